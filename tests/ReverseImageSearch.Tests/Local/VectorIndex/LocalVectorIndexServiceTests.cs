using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Local;
using ReverseImageSearch.Local.Storage;
using ReverseImageSearch.Local.VectorIndex;
using ReverseImageSearch.Tests.Local.Fakes;
using ReverseImageSearch.Tests.Local.Tasks;

namespace ReverseImageSearch.Tests.Local.VectorIndex;

public class LocalVectorIndexServiceTests
{
    private const string Bucket = "demo-ext-ris";
    private const string DeployedId = "ext_ris_index";

    private TempDirectory _temp = null!;
    private LocalObjectStore _store = null!;
    private InMemoryTaskQueue _queue = null!;

    [SetUp]
    public void SetUp()
    {
        _temp = new TempDirectory();
        _store = new LocalObjectStore(new Dictionary<string, string>(), _temp.Sub("buckets"), NullLogger<LocalObjectStore>.Instance);
        _queue = new InMemoryTaskQueue();
    }

    [TearDown]
    public void TearDown() => _temp.Dispose();

    [Test]
    public async Task CreateIndexBuildsFromTheDatapointFilesThenAnnouncesItsFirstAndLastAuditEntries()
    {
        await WriteDatapointsAsync("datapoints/1.json", ("a.jpg", [1, 0, 0]), ("b.jpg", [0, 1, 0]));
        await WriteDatapointsAsync("datapoints/2.json", ("c.jpg", [0, 0, 1]));
        await WriteDatapointsAsync("datapoints/nested/ignored.json", ("x", [1])); // wrong dimension, but not read: subfolder
        await using var service = NewService(buildDelay: TimeSpan.FromMilliseconds(300));

        var started = await service.CreateIndexAsync(Definition());
        Assert.That(started.Done, Is.False);
        Assert.That(started.Name, Does.Match("^projects/demo/locations/us-central1/indexes/[0-9]+/operations/[0-9]+$"));

        var done = await WaitForOperationAsync(service, started.Name);
        var index = started.Name[..started.Name.IndexOf("/operations/", StringComparison.Ordinal)];
        Assert.That(done.Error, Is.Null);
        Assert.That(done.ResponseResourceName, Is.EqualTo(index));

        var audit = await WaitForAuditEventsAsync(2);
        Assert.That(audit, Is.EqualTo(new[]
        {
            new AuditLogEvent("aiplatform.googleapis.com", "google.cloud.aiplatform.v1.IndexService.CreateIndex", index, started.Name, First: true, Last: false),
            new AuditLogEvent("aiplatform.googleapis.com", "google.cloud.aiplatform.v1.IndexService.CreateIndex", index, started.Name, First: false, Last: true),
        }));
    }

    [Test]
    public async Task ABadDatapointLineFailsTheOperationNamingFileAndLine()
    {
        await WriteDatapointsAsync("datapoints/good.json", ("a.jpg", [1, 0, 0]));
        await _store.WriteAsync(Bucket, "datapoints/bad.json", Encoding.UTF8.GetBytes("{\"id\":\"ok\",\"embedding\":[1,2,3]}\n{\"id\":\"short\",\"embedding\":[1,2]}\n"), "application/json");
        await using var service = NewService();

        var done = await WaitForOperationAsync(service, (await service.CreateIndexAsync(Definition())).Name);

        Assert.That(done.Error, Is.Not.Null);
        Assert.That(done.Error!.Code, Is.EqualTo(3));
        Assert.That(done.Error.Message, Does.Contain($"gs://{Bucket}/datapoints/bad.json line 2"));
        var audit = await WaitForAuditEventsAsync(2);
        Assert.That(audit[1].Last, Is.True);
    }

    [Test]
    public async Task InvalidJsonFailsTheOperation()
    {
        await _store.WriteAsync(Bucket, "datapoints/broken.json", Encoding.UTF8.GetBytes("{\"id\": \"a\", \"embedding\": [1, 2"), "application/json");
        await using var service = NewService();

        var done = await WaitForOperationAsync(service, (await service.CreateIndexAsync(Definition())).Name);

        Assert.That(done.Error?.Code, Is.EqualTo(3));
        Assert.That(done.Error!.Message, Does.Contain("broken.json line 1"));
    }

    [Test]
    public async Task DeployGivesTheEndpointADomainAndAnnouncesTheDeployment()
    {
        await WriteDatapointsAsync("datapoints/1.json", ("a.jpg", [1, 0, 0]));
        await using var service = NewService(deployDelay: TimeSpan.FromMilliseconds(300));
        var index = await CreateReadyIndexAsync(service);
        var endpoint = (await service.CreateIndexEndpointAsync("ris")).ResponseResourceName!;
        Assert.That(endpoint, Does.Match("^projects/demo/locations/us-central1/indexEndpoints/[0-9]+$"));

        var deploying = await service.DeployIndexAsync(endpoint, Spec(index));
        Assert.That(deploying.Done, Is.False);
        Assert.That((await service.GetIndexEndpointAsync(endpoint)).DeployedIndexIds, Is.Empty);

        var done = await WaitForOperationAsync(service, deploying.Name);
        Assert.That(done.Error, Is.Null);
        var info = await service.GetIndexEndpointAsync(endpoint);
        Assert.That(info.PublicEndpointDomainName, Is.EqualTo("localhost"));
        Assert.That(info.DeployedIndexIds, Is.EqualTo(new[] { DeployedId }));

        var audit = await WaitForAuditEventsAsync(4);
        Assert.That(audit[3], Is.EqualTo(new AuditLogEvent("aiplatform.googleapis.com", "google.cloud.aiplatform.v1.IndexEndpointService.DeployIndex", endpoint, deploying.Name, First: false, Last: true)));
        Assert.That(audit[2].First, Is.True);
        Assert.That(audit[2].MethodName, Is.EqualTo(audit[3].MethodName));

        var again = Assert.ThrowsAsync<ServiceException>(() => service.DeployIndexAsync(endpoint, Spec(index)));
        Assert.That((again!.HttpStatus, again.Status), Is.EqualTo((409, "ALREADY_EXISTS")));
    }

    [Test]
    public async Task UnknownResourcesAnswerNotFound()
    {
        await using var service = NewService();
        var unknownEndpoint = "projects/demo/locations/us-central1/indexEndpoints/1";
        var unknownIndex = "projects/demo/locations/us-central1/indexes/1";

        Assert.That(Assert.ThrowsAsync<ServiceException>(() => service.GetOperationAsync(unknownIndex + "/operations/2"))!.Status, Is.EqualTo("NOT_FOUND"));
        Assert.That(Assert.ThrowsAsync<ServiceException>(() => service.GetIndexEndpointAsync(unknownEndpoint))!.HttpStatus, Is.EqualTo(404));
        Assert.That(Assert.ThrowsAsync<ServiceException>(() => service.UpsertDatapointsAsync(unknownIndex, [new("a", [1, 2, 3])]))!.IsNotFound, Is.True);
        Assert.That(Assert.ThrowsAsync<ServiceException>(() => service.RemoveDatapointsAsync(unknownIndex, ["a"]))!.IsNotFound, Is.True);
        Assert.That(Assert.ThrowsAsync<ServiceException>(() => service.FindNeighborsAsync("localhost", unknownEndpoint, DeployedId, [new("q", [1, 2, 3])], 1))!.IsNotFound, Is.True);
    }

    [Test]
    public async Task TheDeployedIndexAnswersFolderSearchesAndReadsStoredVectors()
    {
        await WriteDatapointsAsync("datapoints/1.json", ("a/x.jpg", [1, 0, 0]), ("a/b/y.jpg", [0, 1, 0]), ("c/z.jpg", [0.99f, 0.01f, 0]));
        await using var service = NewService();
        var (_, endpoint) = await DeployAsync(service);

        var results = await service.FindNeighborsAsync("localhost", endpoint, DeployedId, [new("q", [1, 0, 0], "a"), new("q2", [1, 0, 0], "a/b")], 5);
        var read = await service.ReadDatapointsAsync("localhost", endpoint, DeployedId, ["a/b/y.jpg", "nope.jpg"]);

        Assert.That(results[0].Neighbors.Select(n => n.DatapointId), Is.EqualTo(new[] { "a/x.jpg", "a/b/y.jpg" }));
        Assert.That(results[1].Neighbors.Select(n => n.DatapointId), Is.EqualTo(new[] { "a/b/y.jpg" }));
        Assert.That(read.Select(d => (d.DatapointId, string.Join(",", d.FeatureVector))), Is.EqualTo(new[] { ("a/b/y.jpg", "0,1,0") }));
        Assert.That(Assert.ThrowsAsync<ServiceException>(() => service.ReadDatapointsAsync("localhost", endpoint, "not_deployed", ["a/x.jpg"]))!.IsNotFound, Is.True);
    }

    [Test]
    public async Task FindNeighborsReturnsTheStoredVectorFirstAndSeesUpsertsAndRemovals()
    {
        await WriteDatapointsAsync("datapoints/1.json", ("a.jpg", [1, 0, 0]), ("b.jpg", [0.9f, 0.1f, 0]), ("c.jpg", [0, 0, 1]));
        await using var service = NewService();
        var (index, endpoint) = await DeployAsync(service);

        var results = await service.FindNeighborsAsync("localhost", endpoint, DeployedId, [new("q1", [0, 0, 1]), new("q2", [1, 0, 0])], 2);

        Assert.That(results.Select(r => r.Id), Is.EqualTo(new[] { "q1", "q2" }));
        Assert.That(results[1].Neighbors[0], Is.EqualTo(new Neighbor("a.jpg", "0", 0)));
        Assert.That(results[1].Neighbors[1].DatapointId, Is.EqualTo("b.jpg"));
        Assert.That(results[0].Neighbors[0].DatapointId, Is.EqualTo("c.jpg"));

        await service.UpsertDatapointsAsync(index, [new("d.jpg", [0, 0, 2])]);
        await service.RemoveDatapointsAsync(index, ["c.jpg"]);
        var after = await service.FindNeighborsAsync("localhost", endpoint, DeployedId, [new("q", [0, 0, 2])], 10);
        Assert.That(after[0].Neighbors.Select(n => n.DatapointId), Is.EqualTo(new[] { "d.jpg", "b.jpg", "a.jpg" }));

        var mismatch = Assert.ThrowsAsync<ServiceException>(() => service.UpsertDatapointsAsync(index, [new("e.jpg", [1, 2])]));
        Assert.That((mismatch!.HttpStatus, mismatch.Status), Is.EqualTo((400, "INVALID_ARGUMENT")));
    }

    [Test]
    public async Task StateSurvivesANewServiceOverTheSameDataDirectory()
    {
        await WriteDatapointsAsync("datapoints/1.json", ("a.jpg", [1, 0, 0]), ("b.jpg", [0, 1, 0]));
        string index, endpoint, createOperation;
        await using (var first = NewService())
        {
            (index, endpoint) = await DeployAsync(first);
            createOperation = (await first.CreateIndexAsync(Definition())).Name;
            await WaitForOperationAsync(first, createOperation);
            await first.UpsertDatapointsAsync(index, [new("z.jpg", [0, 0, 1])]);
            await first.RemoveDatapointsAsync(index, ["a.jpg"]);
        }

        await using var second = NewService();

        Assert.That((await second.GetOperationAsync(createOperation)).Done, Is.True);
        var info = await second.GetIndexEndpointAsync(endpoint);
        Assert.That((info.PublicEndpointDomainName, info.DeployedIndexIds.Single()), Is.EqualTo(("localhost", DeployedId)));
        var results = await second.FindNeighborsAsync("localhost", endpoint, DeployedId, [new("q", [0, 0, 1])], 10);
        Assert.That(results[0].Neighbors.Select(n => n.DatapointId), Is.EqualTo(new[] { "z.jpg", "b.jpg" }));
    }

    [Test]
    public async Task AnIndexBuildInterruptedByShutdownIsResumedByTheNextService()
    {
        await WriteDatapointsAsync("datapoints/1.json", ("a.jpg", [1, 0, 0]));
        string operation;
        await using (var first = NewService(buildDelay: TimeSpan.FromMinutes(10)))
        {
            operation = (await first.CreateIndexAsync(Definition())).Name;
        }

        await using var second = NewService();
        var done = await WaitForOperationAsync(second, operation);

        Assert.That(done.Error, Is.Null);
        await _queue.WaitUntilAsync(tasks => tasks.Any(t => t.Queue == LocalEventQueues.AuditLogWritten && Audit(t).Last));
    }

    [Test]
    public async Task AStorageFailureDuringTheBuildIsRetriedAndTheBuildFinishesOnceItIsGone()
    {
        await WriteDatapointsAsync("datapoints/1.json", ("a.jpg", [1, 0, 0]), ("b.jpg", [0, 1, 0]));
        // The index files cannot be written (as on a full disk): a file stands where their folder must go.
        var blocker = Path.Combine(_temp.Sub("vector-data"), "indexes");
        Directory.CreateDirectory(Path.GetDirectoryName(blocker)!);
        await File.WriteAllTextAsync(blocker, "in the way");
        await using var service = NewService();

        var operation = (await service.CreateIndexAsync(Definition())).Name;
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var whileBlocked = await service.GetOperationAsync(operation);
        Assert.That(whileBlocked.Done, Is.False, () => $"a transient storage failure must not end the operation: {whileBlocked.Error?.Message}");

        File.Delete(blocker);
        var done = await WaitForOperationAsync(service, operation);
        Assert.That(done.Error, Is.Null);
        var index = done.ResponseResourceName!;
        var endpoint = (await service.CreateIndexEndpointAsync("ris")).ResponseResourceName!;
        await WaitForOperationAsync(service, (await service.DeployIndexAsync(endpoint, Spec(index))).Name);
        var results = await service.FindNeighborsAsync("localhost", endpoint, DeployedId, [new("q", [0, 1, 0])], 10);
        Assert.That(results[0].Neighbors.Select(n => n.DatapointId), Is.EqualTo(new[] { "b.jpg", "a.jpg" }));
    }

    [Test]
    public async Task ADamagedSnapshotIsRebuiltFromTheDatapointFilesAndTheJournalNamingTheBadFile()
    {
        await WriteDatapointsAsync("datapoints/1.json", ("a.jpg", [1, 0, 0]), ("b.jpg", [0, 1, 0]));
        string index, endpoint;
        await using (var first = NewService())
        {
            (index, endpoint) = await DeployAsync(first);
            await first.UpsertDatapointsAsync(index, [new("z.jpg", [0, 0, 1])]);
        }

        var snapshot = Directory.GetFiles(_temp.Sub("vector-data"), "vectors.snapshot", SearchOption.AllDirectories).Single();
        var bytes = await File.ReadAllBytesAsync(snapshot);
        bytes.AsSpan(16, 4).Fill(0xFF); // The first row's id length, as a bad sector or a torn copy leaves it.
        await File.WriteAllBytesAsync(snapshot, bytes);

        var logger = new RecordingLogger<LocalVectorIndexService>();
        await using var second = new LocalVectorIndexService("demo", "us-central1", _temp.Sub("vector-data"), _store, _queue, logger);
        var results = await second.FindNeighborsAsync("localhost", endpoint, DeployedId, [new("q", [0, 0, 1])], 10);

        Assert.That(results[0].Neighbors.Select(n => n.DatapointId), Is.EqualTo(new[] { "z.jpg", "a.jpg", "b.jpg" }).Or.EqualTo(new[] { "z.jpg", "b.jpg", "a.jpg" }));
        Assert.That(logger.Entries.Select(e => e.Message), Has.Some.Contains(snapshot));
    }

    [Test]
    public async Task AnIndexRecordedBeforeDefinitionsWereTypedReopensWithItsMeasure()
    {
        await WriteDatapointsAsync("datapoints/1.json", ("a.jpg", [1, 0, 0]), ("b.jpg", [0, 2, 0]));
        string endpoint;
        await using (var service = NewService())
        {
            endpoint = (await DeployAsync(service, Definition() with { DistanceMeasure = DistanceMeasure.L1 })).Endpoint;
        }

        // The state file as the string-typed definitions wrote it: the parameters' values under Vertex AI's field names.
        var path = Path.Combine(_temp.Sub("vector-data"), "vector-search-state.json");
        var state = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(path))!;
        foreach (var index in state["indexes"]!.AsObject())
        {
            index.Value!["definition"] = System.Text.Json.Nodes.JsonNode.Parse($$"""
                {"displayName":"ris","contentsDeltaUri":"gs://{{Bucket}}/datapoints","dimensions":3,"approximateNeighborsCount":100,
                 "distanceMeasureType":"L1_DISTANCE","featureNormType":"NONE","shardSize":"SHARD_SIZE_SMALL","algorithmConfig":"bruteForceConfig"}
                """);
        }

        await File.WriteAllTextAsync(path, state.ToJsonString());

        await using var reopened = NewService();
        var results = await reopened.FindNeighborsAsync("localhost", endpoint, DeployedId, [new("q", [0, 0, 1])], 10);

        // L1 from (0, 0, 1): 2 to a, 3 to b (squared L2, the enum's default, would give 2 and 5).
        Assert.That(results[0].Neighbors.Select(n => (n.DatapointId, n.Distance)), Is.EqualTo(new[] { ("a.jpg", 2.0), ("b.jpg", 3.0) }));
    }

    private LocalVectorIndexService NewService(TimeSpan? buildDelay = null, TimeSpan? deployDelay = null) =>
        new("demo", "us-central1", _temp.Sub("vector-data"), _store, _queue, NullLogger<LocalVectorIndexService>.Instance, buildDelay, deployDelay);

    private static IndexDefinition Definition() =>
        new("ris", $"gs://{Bucket}/datapoints", 3, 100, DistanceMeasure.SquaredL2, false, IndexShardSize.Small, IndexAlgorithm.BruteForce);

    private static DeployedIndexSpec Spec(string index) => new(DeployedId, index, "e2-standard-2", "ACCELERATOR_TYPE_UNSPECIFIED", 1, 1, 1);

    private static AuditLogEvent Audit(EnqueuedTask task) => task.Payload.Deserialize<AuditLogEvent>(ReverseImageSearch.Core.CoreJson.Options)!;

    private async Task WriteDatapointsAsync(string name, params (string Id, float[] Embedding)[] datapoints)
    {
        var lines = datapoints.Select(d => System.Text.Json.JsonSerializer.Serialize(new { id = d.Id, embedding = d.Embedding }));
        await _store.WriteAsync(Bucket, name, Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"), "application/json");
    }

    private async Task<string> CreateReadyIndexAsync(LocalVectorIndexService service, IndexDefinition? definition = null)
    {
        var done = await WaitForOperationAsync(service, (await service.CreateIndexAsync(definition ?? Definition())).Name);
        Assert.That(done.Error, Is.Null);
        return done.ResponseResourceName!;
    }

    private async Task<(string Index, string Endpoint)> DeployAsync(LocalVectorIndexService service, IndexDefinition? definition = null)
    {
        var index = await CreateReadyIndexAsync(service, definition);
        var endpoint = (await service.CreateIndexEndpointAsync("ris")).ResponseResourceName!;
        var deployed = await WaitForOperationAsync(service, (await service.DeployIndexAsync(endpoint, Spec(index))).Name);
        Assert.That(deployed.Error, Is.Null);
        return (index, endpoint);
    }

    private async Task<List<AuditLogEvent>> WaitForAuditEventsAsync(int count)
    {
        var tasks = await _queue.WaitUntilAsync(all => all.Count(t => t.Queue == LocalEventQueues.AuditLogWritten) >= count);
        return tasks.Where(t => t.Queue == LocalEventQueues.AuditLogWritten).Select(Audit).ToList();
    }

    /// <summary>Polls as a caller of the API would, with a generous deadline.</summary>
    private static async Task<LongRunningOperation> WaitForOperationAsync(LocalVectorIndexService service, string name)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var operation = await service.GetOperationAsync(name);
            if (operation.Done)
            {
                return operation;
            }

            await Task.Delay(20, deadline.Token);
        }
    }
}
