using System.Net.Http.Headers;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Gcp;
using ReverseImageSearch.Gcp.Http;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp.Firestore;

/// <summary>
/// The document-store behaviour the Core relies on, against Google's Firestore emulator: directly
/// (FIRESTORE_EMULATOR_HOST configuration), and through the contract server so every request is also
/// checked against the discovery document.
/// </summary>
public abstract class FirestoreEmulatorBehaviourTests
{
    protected IDocumentStore Store { get; private set; } = null!;

    protected abstract string ProjectId { get; }

    protected ServiceProvider? Services { get; set; }

    protected abstract Task<ServiceProvider> BuildAsync(string emulatorHost);

    [SetUp]
    public async Task StartAsync()
    {
        var host = await FirestoreEmulator.EnsureStartedAsync();
        await FirestoreEmulator.WipeAsync(ProjectId);
        Services = await BuildAsync(host);
        Store = Services.GetRequiredService<IDocumentStore>();
    }

    [TearDown]
    public void DisposeServices() => Services?.Dispose();

    protected ExtensionOptions Extension => new() { ProjectId = ProjectId, InstanceId = "ris", Location = "us-central1", ImageBucket = "images" };

    private static Dictionary<string, object?> F(params (string Key, object? Value)[] fields) => fields.ToDictionary(f => f.Key, f => f.Value);

    [Test]
    public async Task AMissingDocumentIsNull() => Assert.That(await Store.GetAsync("_ext-ris/tasks"), Is.Null);

    [Test]
    public async Task EveryValueTypeRoundTrips()
    {
        var when = new DateTimeOffset(2026, 2, 3, 4, 5, 6, TimeSpan.Zero).AddTicks(1234560);
        await Store.SetAsync("_ext-ris/tasks", F(
            ("n", null), ("b", true), ("l", 1L << 53), ("d", 0.1), ("s", "héllo"), ("t", when),
            ("list", new object?[] { "a", 2L, 3.5, F(("k", "v")) }),
            ("map", F(("inner", F(("deep", 1L))), ("a-b", "odd"))),
            ("emptyList", Array.Empty<object?>()), ("emptyMap", F())), SetMode.Overwrite);

        var doc = await Store.GetAsync("_ext-ris/tasks");
        Assert.That(doc, Is.Not.Null);
        Assert.Multiple(() =>
        {
            Assert.That(doc!.Fields.ContainsKey("n") && doc["n"] is null, Is.True);
            Assert.That(doc["b"], Is.EqualTo(true));
            Assert.That(doc["l"], Is.EqualTo(1L << 53));
            Assert.That(doc["d"], Is.EqualTo(0.1));
            Assert.That(doc["s"], Is.EqualTo("héllo"));
            Assert.That(doc["t"], Is.EqualTo(when));
            Assert.That(doc["list"], Is.EqualTo(new object?[] { "a", 2L, 3.5, F(("k", "v")) }));
            Assert.That(doc["map"], Is.EqualTo(F(("inner", F(("deep", 1L))), ("a-b", "odd"))));
            Assert.That(doc["emptyList"], Is.Empty);
            Assert.That(doc["emptyMap"], Is.Empty);
            Assert.That(doc.UpdateTime, Is.Not.Null);
        });
    }

    [Test]
    public async Task OverwriteReplacesTheWholeDocument()
    {
        await Store.SetAsync("c/d", F(("a", 1L), ("b", 2L)), SetMode.Overwrite);
        await Store.SetAsync("c/d", F(("c", 3L)), SetMode.Overwrite);
        Assert.That((await Store.GetAsync("c/d"))!.Fields, Is.EqualTo(F(("c", 3L))));
    }

    [Test]
    public async Task MergeWritesOnlyTheGivenFieldsAndFieldDeleteRemovesOne()
    {
        await Store.SetAsync("_ext-ris/metadata", F(("status", "INDEX_BUILDING"), ("operation", "op/1"), ("outputShape", 1280L), ("a-b", "x")), SetMode.Overwrite);
        await Store.SetAsync("_ext-ris/metadata", F(("status", "INDEX_DEPLOYED"), ("operation", FieldDelete.Value), ("a-b", "y"), ("with space", true)), SetMode.Merge);
        Assert.That((await Store.GetAsync("_ext-ris/metadata"))!.Fields, Is.EqualTo(F(
            ("status", "INDEX_DEPLOYED"), ("outputShape", 1280L), ("a-b", "y"), ("with space", true))));
    }

    [Test]
    public async Task MergeCreatesAMissingDocumentAndAnEmptyMergeToo()
    {
        await Store.SetAsync("c/merged", F(("x", 1L), ("gone", FieldDelete.Value)), SetMode.Merge);
        Assert.That((await Store.GetAsync("c/merged"))!.Fields, Is.EqualTo(F(("x", 1L))));
        await Store.SetAsync("c/empty", F(), SetMode.Merge);
        Assert.That((await Store.GetAsync("c/empty"))!.Fields, Is.Empty);
        await Store.SetAsync("c/merged", F(), SetMode.Merge);
        Assert.That((await Store.GetAsync("c/merged"))!.Fields, Is.EqualTo(F(("x", 1L))));
    }

    [Test]
    public async Task CreateOnlyWhenAbsent()
    {
        Assert.That(await Store.CreateAsync("_ext-ris/tasks/enqueues/t1", F(("status", "PENDING"))), Is.True);
        Assert.That(await Store.CreateAsync("_ext-ris/tasks/enqueues/t1", F(("status", "OTHER"))), Is.False);
        Assert.That((await Store.GetAsync("_ext-ris/tasks/enqueues/t1"))!.GetString("status"), Is.EqualTo("PENDING"));
    }

    [Test]
    public async Task DeleteRemovesAndAMissingDocumentIsFine()
    {
        await Store.SetAsync("c/d", F(("a", 1L)), SetMode.Overwrite);
        await Store.DeleteAsync("c/d");
        Assert.That(await Store.GetAsync("c/d"), Is.Null);
        await Store.DeleteAsync("c/d");
    }

    [Test]
    public async Task ATransactionReadsThenWritesAtomically()
    {
        await Store.SetAsync("_ext-ris/tasks", F(("processedLength", 1L), ("totalLength", 3L)), SetMode.Overwrite);
        var status = await Store.RunTransactionAsync(async (tx, ct) =>
        {
            var doc = await tx.GetAsync("_ext-ris/tasks", ct);
            var processed = doc!.GetInt64("processedLength")!.Value + 2;
            tx.Set("_ext-ris/tasks", F(("processedLength", processed), ("status", processed == 3 ? "DONE" : "PROCESSING")), SetMode.Merge);
            tx.Set("_ext-ris/tasks/enqueues/t1", F(("status", "DONE")), SetMode.Overwrite);
            return processed == 3 ? "DONE" : "PROCESSING";
        });

        Assert.That(status, Is.EqualTo("DONE"));
        Assert.That((await Store.GetAsync("_ext-ris/tasks"))!.Fields, Is.EqualTo(F(("processedLength", 3L), ("totalLength", 3L), ("status", "DONE"))));
        Assert.That((await Store.GetAsync("_ext-ris/tasks/enqueues/t1"))!.GetString("status"), Is.EqualTo("DONE"));
    }

    [Test]
    public async Task ATransactionWhoseBodyThrowsWritesNothing()
    {
        Assert.ThrowsAsync<InvalidDataException>(() => Store.RunTransactionAsync<int>(async (tx, ct) =>
        {
            await tx.GetAsync("c/d", ct);
            tx.Set("c/d", F(("a", 1L)), SetMode.Overwrite);
            throw new InvalidDataException("no");
        }));
        Assert.That(await Store.GetAsync("c/d"), Is.Null);

        // The rolled-back transaction holds no lock: a new write goes through.
        await Store.SetAsync("c/d", F(("a", 2L)), SetMode.Overwrite);
        Assert.That((await Store.GetAsync("c/d"))!.GetInt64("a"), Is.EqualTo(2));
    }

    [Test]
    public async Task ConcurrentIncrementsGiveTheExactTotal()
    {
        const int Writers = 4;
        const int Each = 3;
        await Store.SetAsync("_ext-ris/tasks", F(("processedLength", 0L)), SetMode.Overwrite);
        // WaitAsync only turns a lock-up into a failure instead of a stuck run; it asserts nothing about speed.
        await Task.WhenAll(Enumerable.Range(0, Writers).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < Each; i++)
            {
                await Store.RunTransactionAsync(async (tx, ct) =>
                {
                    var doc = await tx.GetAsync("_ext-ris/tasks", ct);
                    tx.Set("_ext-ris/tasks", F(("processedLength", doc!.GetInt64("processedLength")!.Value + 1)), SetMode.Merge);
                    return 0;
                });
            }
        }))).WaitAsync(TimeSpan.FromMinutes(2));

        Assert.That((await Store.GetAsync("_ext-ris/tasks"))!.GetInt64("processedLength"), Is.EqualTo(Writers * Each));
    }

    [Test]
    public async Task ConcurrentCreateIfAbsentInTransactionsHasExactlyOneWinner()
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => Task.Run(() => Store.RunTransactionAsync(async (tx, ct) =>
        {
            var doc = await tx.GetAsync("_ext-ris/tasks/enqueues/chunk", ct);
            if (doc is not null)
            {
                return false;
            }

            tx.Set("_ext-ris/tasks/enqueues/chunk", F(("by", (long)i)), SetMode.Overwrite);
            return true;
        })))).WaitAsync(TimeSpan.FromMinutes(2));

        Assert.That(results.Count(won => won), Is.EqualTo(1));
    }
}

public sealed class FirestoreEmulatorDirectTests : FirestoreEmulatorBehaviourTests
{
    protected override string ProjectId => "demo-direct";

    protected override Task<ServiceProvider> BuildAsync(string emulatorHost)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IAccessTokenSource>(new FixedAccessTokenSource("must-not-be-used-with-the-emulator"));
        services.AddGcpAdapters(Extension, e => e.FirestoreEmulatorHost = emulatorHost, a =>
        {
            a.TransactionBaseDelay = TimeSpan.FromMilliseconds(5);
            a.TransactionMaxAttempts = 50;
        });
        return Task.FromResult(services.BuildServiceProvider());
    }
}

public sealed class FirestoreEmulatorThroughContractTests : FirestoreEmulatorBehaviourTests
{
    private ContractServer _server = null!;

    protected override string ProjectId => "demo-proj";

    [OneTimeSetUp]
    public async Task StartServerAsync() => _server = await ContractServer.StartAsync("firestore.v1");

    [OneTimeTearDown]
    public async Task StopServerAsync() => await _server.DisposeAsync();

    [TearDown]
    public void NoViolations() => _server.AssertNoViolations();

    protected override Task<ServiceProvider> BuildAsync(string emulatorHost)
    {
        _server.Reset();
        _server.Fallback = FirestoreEmulator.Forward(emulatorHost);
        return Task.FromResult(GcpTestHost.Build(_server, a =>
        {
            a.TransactionBaseDelay = TimeSpan.FromMilliseconds(5);
            a.TransactionMaxAttempts = 50;
        }));
    }

    [Test]
    public async Task AnInjectedAbortIsRetriedAgainstTheRealEmulator()
    {
        await Store.SetAsync("c/n", new Dictionary<string, object?> { ["v"] = 1L }, SetMode.Overwrite);
        _server.FailNext("firestore.projects.databases.documents.commit", Reply.Error(409, "ABORTED", "injected contention"));
        var runs = 0;
        await Store.RunTransactionAsync(async (tx, ct) =>
        {
            runs++;
            var doc = await tx.GetAsync("c/n", ct);
            tx.Set("c/n", new Dictionary<string, object?> { ["v"] = doc!.GetInt64("v") + 1 }, SetMode.Overwrite);
            return 0;
        });
        Assert.That(runs, Is.EqualTo(2));
        Assert.That((await Store.GetAsync("c/n"))!.GetInt64("v"), Is.EqualTo(2));
    }

    [Test]
    public async Task A503IsRetriedByThePipeline()
    {
        _server.FailNext("firestore.projects.databases.documents.patch", Reply.Error(503, "UNAVAILABLE", "injected"));
        await Store.SetAsync("c/r", new Dictionary<string, object?> { ["v"] = 1L }, SetMode.Overwrite);
        Assert.That((await Store.GetAsync("c/r"))!.GetInt64("v"), Is.EqualTo(1));
        Assert.That(_server.RequestsOf("firestore.projects.databases.documents.patch"), Has.Count.EqualTo(2));
    }
}
