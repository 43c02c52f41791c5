using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp.Firestore;

/// <summary>The Firestore adapter's requests, exactly, against canned answers (no emulator needed).</summary>
public sealed class FirestoreDocumentStoreShapeTests : ContractTestBase
{
    private const string Db = "projects/demo-proj/databases/(default)";
    private const string Get = "firestore.projects.databases.documents.get";
    private const string Patch = "firestore.projects.databases.documents.patch";
    private const string Delete = "firestore.projects.databases.documents.delete";
    private const string Begin = "firestore.projects.databases.documents.beginTransaction";
    private const string Commit = "firestore.projects.databases.documents.commit";
    private const string Rollback = "firestore.projects.databases.documents.rollback";
    private const string BatchGet = "firestore.projects.databases.documents.batchGet";
    private ServiceProvider _services = null!;
    private IDocumentStore _store = null!;
    private int _transactions;

    [SetUp]
    public void CreateStore()
    {
        _transactions = 0;
        Server.Handle(Get, _ => Reply.Error(404, "NOT_FOUND", "Document not found."));
        Server.Handle(Patch, r =>
        {
            var doc = JsonNode.Parse(r.Body)!.AsObject();
            doc["name"] = r.RawPath["/v1/".Length..];
            doc["createTime"] = "2026-01-02T03:04:05.123456Z";
            doc["updateTime"] = "2026-01-02T03:04:05.123456Z";
            return Reply.Ok(doc.ToJsonString());
        });
        Server.Handle(Delete, _ => Reply.Ok("{}"));
        Server.Handle(Begin, _ => Reply.Ok(JsonSerializer.Serialize(new { transaction = Convert.ToBase64String([1, 2, (byte)Interlocked.Increment(ref _transactions)]) })));
        Server.Handle(Commit, _ => Reply.Ok("""{"writeResults":[{"updateTime":"2026-01-02T03:04:05.123456Z"}],"commitTime":"2026-01-02T03:04:05.123456Z"}"""));
        Server.Handle(Rollback, _ => Reply.Ok("{}"));
        Server.Handle(BatchGet, r => Reply.Ok(JsonSerializer.Serialize(r.Json.GetProperty("documents").EnumerateArray()
            .Select(d => new { missing = d.GetString(), readTime = "2026-01-02T03:04:05Z" }))));
        _services = GcpTestHost.Build(Server, a => a.TransactionMaxAttempts = 3);
        _store = _services.GetRequiredService<IDocumentStore>();
    }

    [TearDown]
    public void DisposeServices() => _services.Dispose();

    [Test]
    public async Task OverwriteIsAPatchWithoutMaskAndEncodesEveryValueType()
    {
        var fields = new Dictionary<string, object?>
        {
            ["n"] = null,
            ["b"] = true,
            ["i"] = 42,
            ["l"] = long.MaxValue,
            ["d"] = 1.5,
            ["nan"] = double.NaN,
            ["s"] = "text",
            ["t"] = new DateTimeOffset(2026, 1, 2, 3, 4, 5, 678, TimeSpan.FromHours(2)),
            ["bytes"] = new byte[] { 1, 2, 3 },
            ["list"] = new object?[] { "a", 1L, new Dictionary<string, object?> { ["x"] = false } },
            ["empty"] = Array.Empty<object?>(),
            ["map"] = new Dictionary<string, object?> { ["k"] = "v" },
            ["emptyMap"] = new Dictionary<string, object?>(),
        };
        await _store.SetAsync("_ext-ris/tasks", fields, SetMode.Overwrite);

        var request = Server.RequestsOf(Patch).Single();
        Assert.That(request.RawPath, Is.EqualTo($"/v1/{Db}/documents/_ext-ris/tasks"));
        Assert.That(request.Query, Is.Empty);
        Assert.That(request.Json.GetRawText(), Is.EqualTo("""
            {"fields":{"n":{"nullValue":null},"b":{"booleanValue":true},"i":{"integerValue":"42"},"l":{"integerValue":"9223372036854775807"},"d":{"doubleValue":1.5},"nan":{"doubleValue":"NaN"},"s":{"stringValue":"text"},"t":{"timestampValue":"2026-01-02T01:04:05.678000Z"},"bytes":{"bytesValue":"AQID"},"list":{"arrayValue":{"values":[{"stringValue":"a"},{"integerValue":"1"},{"mapValue":{"fields":{"x":{"booleanValue":false}}}}]}},"empty":{"arrayValue":{}},"map":{"mapValue":{"fields":{"k":{"stringValue":"v"}}}},"emptyMap":{"mapValue":{}}}}
            """.Trim()));
    }

    [Test]
    public async Task MergeMasksTheGivenFieldsQuotingOddNamesAndDeletesFieldDelete()
    {
        await _store.SetAsync("_ext-ris/metadata", new Dictionary<string, object?>
        {
            ["status"] = "INDEX_BUILDING",
            ["a-b"] = 1,
            ["with`tick"] = 2,
            ["operation"] = FieldDelete.Value,
        }, SetMode.Merge);

        var request = Server.RequestsOf(Patch).Single();
        Assert.That(request.QueryValues("updateMask.fieldPaths"), Is.EqualTo(new[] { "status", "`a-b`", "`with\\`tick`", "operation" }));
        Assert.That(request.Json.GetProperty("fields").EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "status", "a-b", "with`tick" }));
    }

    [Test]
    public void FieldDeleteWithOverwriteIsRejected() =>
        Assert.ThrowsAsync<ArgumentException>(() => _store.SetAsync("c/d", new Dictionary<string, object?> { ["x"] = FieldDelete.Value }, SetMode.Overwrite));

    [Test]
    public async Task AnEmptyMergeCommitsAnEmptyMaskSoTheDocumentExists()
    {
        await _store.SetAsync("c/d", new Dictionary<string, object?>(), SetMode.Merge);
        Assert.That(Server.RequestsOf(Commit).Single().Json.GetRawText(), Is.EqualTo(
            """{"writes":[{"update":{"name":"@DB/documents/c/d","fields":{}},"updateMask":{"fieldPaths":[]}}]}""".Replace("@DB", Db, StringComparison.Ordinal)));
    }

    [Test]
    public async Task CreateUsesTheExistsFalsePreconditionAndFalseWhenItFails()
    {
        Assert.That(await _store.CreateAsync("_ext-ris/tasks/enqueues/t1", new Dictionary<string, object?> { ["taskId"] = "t1" }), Is.True);
        Assert.That(Server.RequestsOf(Patch).Single().QueryValue("currentDocument.exists"), Is.EqualTo("false"));

        Server.FailNext(Patch, Reply.Error(409, "ALREADY_EXISTS", "Document already exists"));
        Assert.That(await _store.CreateAsync("c/d", new Dictionary<string, object?>()), Is.False);
        Server.FailNext(Patch, Reply.Error(400, "FAILED_PRECONDITION", "precondition"));
        Assert.That(await _store.CreateAsync("c/d", new Dictionary<string, object?>()), Is.False);
        Server.FailNext(Patch, new Reply(412, """{"error":{"code":412,"message":"precondition"}}"""));
        Assert.That(await _store.CreateAsync("c/d", new Dictionary<string, object?>()), Is.False);
        Server.FailNext(Patch, Reply.Error(400, "INVALID_ARGUMENT", "bad"));
        Assert.ThrowsAsync<ServiceException>(() => _store.CreateAsync("c/d", new Dictionary<string, object?>()));
    }

    [Test]
    public async Task GetDecodesEveryValueTypeAndTheUpdateTime()
    {
        Server.Handle(Get, _ => Reply.Ok("""
            {"name":"@DB/documents/c/d","fields":{
              "n":{"nullValue":"NULL_VALUE"},"b":{"booleanValue":true},"i":{"integerValue":"7"},"i2":{"integerValue":8},
              "d":{"doubleValue":2.5},"inf":{"doubleValue":"Infinity"},"s":{"stringValue":"x"},
              "t":{"timestampValue":"2026-01-02T03:04:05.123456Z"},"by":{"bytesValue":"AQI="},
              "r":{"referenceValue":"@DB/documents/a/b"},"g":{"geoPointValue":{"latitude":1.5,"longitude":-2}},
              "a":{"arrayValue":{"values":[{"integerValue":"1"},{"stringValue":"y"}]}},"ea":{"arrayValue":{}},
              "m":{"mapValue":{"fields":{"k":{"booleanValue":false}}}},"em":{"mapValue":{}}},
             "createTime":"2026-01-01T00:00:00Z","updateTime":"2026-01-02T03:04:05.123456Z"}
            """.Replace("@DB", Db, StringComparison.Ordinal)));
        var doc = await _store.GetAsync("c/d");
        Assert.That(doc, Is.Not.Null);
        Assert.Multiple(() =>
        {
            Assert.That(doc!.Path, Is.EqualTo("c/d"));
            Assert.That(doc.UpdateTime, Is.EqualTo(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero).AddTicks(1234560)));
            Assert.That(doc["n"], Is.Null);
            Assert.That(doc["b"], Is.EqualTo(true));
            Assert.That(doc.GetInt64("i"), Is.EqualTo(7));
            Assert.That(doc["i2"], Is.EqualTo(8L));
            Assert.That(doc["d"], Is.EqualTo(2.5));
            Assert.That(doc["inf"], Is.EqualTo(double.PositiveInfinity));
            Assert.That(doc.GetString("s"), Is.EqualTo("x"));
            Assert.That(doc["t"], Is.EqualTo(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero).AddTicks(1234560)));
            Assert.That(doc["by"], Is.EqualTo(new byte[] { 1, 2 }));
            Assert.That(doc["r"], Is.EqualTo($"{Db}/documents/a/b"));
            Assert.That(doc["g"], Is.EqualTo(new Dictionary<string, object?> { ["latitude"] = 1.5, ["longitude"] = -2.0 }));
            Assert.That(doc["a"], Is.EqualTo(new object?[] { 1L, "y" }));
            Assert.That(doc["ea"], Is.Empty);
            Assert.That(doc["m"], Is.EqualTo(new Dictionary<string, object?> { ["k"] = false }));
            Assert.That(doc["em"], Is.Empty);
        });
    }

    [Test]
    public async Task AMissingDocumentIsNullAndDeletingItIsNotAnError()
    {
        Assert.That(await _store.GetAsync("c/missing"), Is.Null);
        Server.FailNext(Delete, Reply.Error(404, "NOT_FOUND", "gone"));
        await _store.DeleteAsync("c/missing");
        Assert.That(Server.RequestsOf(Delete).Single().RawPath, Is.EqualTo($"/v1/{Db}/documents/c/missing"));
    }

    [Test]
    public void APathThatIsNotADocumentIsRejected()
    {
        Assert.ThrowsAsync<ArgumentException>(() => _store.GetAsync("collectionOnly"));
        Assert.ThrowsAsync<ArgumentException>(() => _store.GetAsync("a//b"));
    }

    [Test]
    public async Task ATransactionReadsWithItsIdAndCommitsItsWrites()
    {
        var result = await _store.RunTransactionAsync(async (tx, ct) =>
        {
            var doc = await tx.GetAsync("_ext-ris/tasks", ct);
            tx.Set("_ext-ris/tasks", new Dictionary<string, object?> { ["processedLength"] = 3, ["old"] = FieldDelete.Value }, SetMode.Merge);
            tx.Set("_ext-ris/other", new Dictionary<string, object?> { ["x"] = "y" }, SetMode.Overwrite);
            tx.Delete("_ext-ris/tasks/enqueues/t1");
            return doc is null ? "absent" : "present";
        });

        Assert.That(result, Is.EqualTo("absent"));
        Assert.That(Server.RequestsOf(Begin).Single().Json.GetRawText(), Is.EqualTo("""{"options":{"readWrite":{}}}"""));
        Assert.That(Server.RequestsOf(Get), Is.Empty);
        Assert.That(Server.RequestsOf(BatchGet).Single().Json.GetRawText(),
            Is.EqualTo("""{"documents":["@DB/documents/_ext-ris/tasks"],"transaction":"AQIB"}""".Replace("@DB", Db, StringComparison.Ordinal)));
        Assert.That(Server.RequestsOf(Commit).Single().Json.GetRawText(), Is.EqualTo("""
            {"writes":[{"update":{"name":"@DB/documents/_ext-ris/tasks","fields":{"processedLength":{"integerValue":"3"}}},"updateMask":{"fieldPaths":["processedLength","old"]}},{"update":{"name":"@DB/documents/_ext-ris/other","fields":{"x":{"stringValue":"y"}}}},{"delete":"@DB/documents/_ext-ris/tasks/enqueues/t1"}],"transaction":"AQIB"}
            """.Trim().Replace("@DB", Db, StringComparison.Ordinal)));
        Assert.That(Server.RequestsOf(Rollback), Is.Empty);
    }

    [Test]
    public void ABodyThatThrowsRollsBack()
    {
        Assert.ThrowsAsync<InvalidTimeZoneException>(() => _store.RunTransactionAsync<int>(async (tx, ct) =>
        {
            await tx.GetAsync("c/d", ct);
            throw new InvalidTimeZoneException("boom");
        }));
        Assert.That(Server.RequestsOf(Rollback).Single().Json.GetRawText(), Is.EqualTo("""{"transaction":"AQIB"}"""));
        Assert.That(Server.RequestsOf(Commit), Is.Empty);
    }

    [Test]
    public void ReadsAfterWritesAreRefused()
    {
        Assert.ThrowsAsync<InvalidOperationException>(() => _store.RunTransactionAsync(async (tx, ct) =>
        {
            tx.Delete("c/d");
            return await tx.GetAsync("c/e", ct);
        }));
        Assert.That(Server.RequestsOf(Rollback), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task AnAbortedCommitRunsTheBodyAgainInARetryTransaction()
    {
        Server.FailNext(Commit, Reply.Error(409, "ABORTED", "Transaction lock timeout"));
        var runs = 0;
        await _store.RunTransactionAsync(async (tx, ct) =>
        {
            runs++;
            await tx.GetAsync("c/d", ct);
            tx.Set("c/d", new Dictionary<string, object?> { ["n"] = runs }, SetMode.Overwrite);
            return runs;
        });

        Assert.That(runs, Is.EqualTo(2));
        Assert.That(Server.RequestsOf(Rollback).Single().Json.GetRawText(), Is.EqualTo("""{"transaction":"AQIB"}"""));
        var begins = Server.RequestsOf(Begin);
        Assert.That(begins[1].Json.GetRawText(), Is.EqualTo("""{"options":{"readWrite":{"retryTransaction":"AQIB"}}}"""));
        Assert.That(Server.RequestsOf(Commit).Select(c => c.Json.GetProperty("transaction").GetString()), Is.EqualTo(new[] { "AQIB", "AQIC" }));
    }

    [Test]
    public void ContentionIsGivenUpAfterTheConfiguredAttempts()
    {
        for (var i = 0; i < 3; i++)
        {
            Server.FailNext(Commit, Reply.Error(409, "ABORTED", "contention"));
        }

        var e = Assert.ThrowsAsync<ServiceException>(() => _store.RunTransactionAsync((tx, ct) =>
        {
            tx.Set("c/d", new Dictionary<string, object?>(), SetMode.Overwrite);
            return Task.FromResult(0);
        }));
        Assert.That(e!.Status, Is.EqualTo("ABORTED"));
        Assert.That(Server.RequestsOf(Begin), Has.Count.EqualTo(3));
    }
}
