using System.Text.Json;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Local.Documents;
using ReverseImageSearch.Tests.Local.Tasks;

namespace ReverseImageSearch.Tests.Core;

/// <summary>
/// The coordination documents' shape in the store is the original extension's (seed/BEHAVIOUR.md: tasks {totalLength,
/// processedLength, status}, enqueues {taskId, status, objects, filePath}, metadata {outputShape, status, operation,
/// index, indexEndpoint, publicEndpointDomainName}) plus this version's own fields: each typed record and transition of
/// <see cref="CoordinationState"/> is checked against the exact field names and values as stored, and read back.
/// </summary>
public sealed class CoordinationSchemaTests
{
    private const string Tasks = "_ext-ris/tasks";
    private const string Metadata = "_ext-ris/metadata";
    private const string Operation = "projects/p/locations/us-central1/indexes/7/operations/8";
    private const string Index = "projects/p/locations/us-central1/indexes/7";
    private const string Endpoint = "projects/p/locations/us-central1/indexEndpoints/9";
    private const string Domain = "123.us-central1-456.vdb.vertexai.goog";

    private TestDatabase _files = null!;
    private SqliteDocumentStore _store = null!;
    private CoordinationState _state = null!;

    [SetUp]
    public void SetUp()
    {
        _files = new TestDatabase();
        _store = new SqliteDocumentStore(_files.Database, _files.NewQueue(), [], _files.Clock);
        var options = TestOptions.Load();
        _state = new CoordinationState(_store, new CoordinationDocuments(options), options, _files.Clock);
    }

    [TearDown]
    public void TearDown() => _files.Dispose();

    [Test]
    public void StatusesAreSpelledAsTheOriginalsInTheDocumentsAndInJson()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Enum.GetValues<IndexStatus>().Select(CoordinationState.StatusName), Is.EqualTo(new[] { "INDEX_BUILDING", "INDEX_DEPLOYING", "INDEX_DEPLOYED" }));
            Assert.That(Enum.GetValues<BackfillStatus>().Select(CoordinationState.StatusName), Is.EqualTo(new[] { "PENDING", "PROCESSING", "DONE", "FAILED" }));
            Assert.That(Enum.GetValues<DatapointStatus>().Select(CoordinationState.StatusName), Is.EqualTo(new[] { "INDEXED", "SKIPPED" }));
            // The emulator's status answer and the callable's error details serialise the typed status.
            Assert.That(JsonSerializer.Serialize(new { status = (IndexStatus?)IndexStatus.Deploying }, CoreJson.Options), Is.EqualTo("""{"status":"INDEX_DEPLOYING"}"""));
            Assert.That(JsonSerializer.Serialize(BackfillStatus.Failed, CoreJson.Options), Is.EqualTo("\"FAILED\""));
        });
    }

    [Test]
    public async Task IndexTransitionsWriteTheMetadataFieldsAndReadBack()
    {
        var claim = await _state.ClaimIndexCreationAsync(TimeSpan.FromMinutes(1), CancellationToken.None);
        Assert.That(claim.Outcome, Is.EqualTo(IndexCreationClaimOutcome.Claimed));
        Assert.That(await FieldsAsync(Metadata), Is.EquivalentTo(Fields(
            ("status", "INDEX_BUILDING"), ("indexCreationClaim", claim.Token), ("indexCreationClaimedAt", _files.Clock.GetUtcNow()))));
        Assert.That((await _state.ReadMetadataAsync(CancellationToken.None))!.CreationUnrecorded, Is.True);

        Assert.That(await _state.RecordIndexCreationAsync(claim.Token!, Operation, CancellationToken.None), Is.True);
        Assert.That(await FieldsAsync(Metadata), Does.Contain(KeyValuePair.Create("operation", (object?)Operation)));

        await _state.RecordIndexEndpointAsync(Index, Endpoint, CancellationToken.None);
        await _state.RecordDeploymentRequestedAsync(Index, Endpoint, CancellationToken.None);
        Assert.That(await FieldsAsync(Metadata), Is.EquivalentTo(Fields(
            ("status", "INDEX_DEPLOYING"), ("operation", Operation), ("index", Index), ("indexEndpoint", Endpoint),
            ("indexCreationClaim", claim.Token), ("indexCreationClaimedAt", _files.Clock.GetUtcNow()))));

        await _state.RecordDeployedAsync(Domain, CancellationToken.None);
        Assert.That(await FieldsAsync(Metadata), Is.EquivalentTo(Fields(
            ("status", "INDEX_DEPLOYED"), ("index", Index), ("indexEndpoint", Endpoint), ("publicEndpointDomainName", Domain),
            ("indexCreationClaim", claim.Token), ("indexCreationClaimedAt", _files.Clock.GetUtcNow()))), "the operation is dropped");

        var metadata = await _state.ReadMetadataAsync(CancellationToken.None);
        Assert.That(metadata, Is.EqualTo(new IndexMetadata(
            IndexStatus.Deployed, null, Index, Endpoint, Domain, null, EmbeddingSettings.BeforeMatchColor, null, claim.Token, _files.Clock.GetUtcNow())));
        var availability = await _state.ReadIndexAvailabilityAsync(CancellationToken.None);
        Assert.That((availability.Readiness, availability.Status, availability.Deployed),
            Is.EqualTo((IndexReadiness.Deployed, (IndexStatus?)IndexStatus.Deployed, new DeployedIndex(Index, Endpoint, Domain))));
    }

    [Test]
    public async Task ErrorsAndEmbeddingSettingsAreRecordedUnderTheirFieldsAndReadBack()
    {
        // MATCH_CROPS set away from its default, so the recorded value is the running one.
        var options = TestOptions.Load(("MATCH_CROPS", "true"));
        var state = new CoordinationState(_store, new CoordinationDocuments(options), options, _files.Clock);
        await state.RecordEmbeddingSettingsAsync(CancellationToken.None);
        await state.RecordErrorAsync("onIndexCreated", "Index creation failed", CancellationToken.None);

        var fields = await FieldsAsync(Metadata);
        var running = EmbeddingSettings.Of(options);
        Assert.That(running.MatchCrops, Is.True);
        Assert.That(fields.Keys, Is.EquivalentTo(new[] { "embeddingModel", "matchColor", "matchCrops", "error" }));
        Assert.That((fields["embeddingModel"], fields["matchColor"], fields["matchCrops"]),
            Is.EqualTo((running.Model, (object?)running.MatchColor, (object?)true)));
        Assert.That(fields["error"], Is.EquivalentTo(Fields(("function", "onIndexCreated"), ("message", "Index creation failed"), ("time", _files.Clock.GetUtcNow()))));

        var metadata = (await state.ReadMetadataAsync(CancellationToken.None))!;
        Assert.That(metadata.EmbeddingSettings, Is.EqualTo(running));
        Assert.That(metadata.Error, Is.EqualTo(new RecordedError("onIndexCreated", "Index creation failed", _files.Clock.GetUtcNow())));
        Assert.That(metadata.Status, Is.Null);
    }

    [Test]
    public async Task BackfillTransitionsWriteTheTasksEnqueueAndDatapointFieldsAndReadBack()
    {
        var chunk = new BackfillChunk("ext-ris-task1", "photos", ["a.jpg", "dir/b.png", "c.gif"]);
        await _state.StartBackfillRunAsync(3, "run-1", CancellationToken.None);
        await _state.RecordPendingChunksAsync([chunk], CancellationToken.None);
        await _state.RecordPlanCompleteAsync(1, CancellationToken.None);

        Assert.That(await FieldsAsync(Tasks), Is.EquivalentTo(Fields(
            ("totalLength", 3L), ("processedLength", 0L), ("status", "PENDING"), ("runId", "run-1"), ("chunkCount", 1L))));
        Assert.That(await FieldsAsync("_ext-ris/tasks/enqueues/ext-ris-task1"), Is.EquivalentTo(Fields(
            ("taskId", chunk.Id), ("status", "PENDING"), ("objects", new object?[] { "a.jpg", "dir/b.png", "c.gif" }))));
        Assert.That(await _state.ReadBackfillRunAsync(CancellationToken.None), Is.EqualTo(new BackfillRun("run-1", BackfillStatus.Pending, 3, 0, 1, null)));

        Assert.That(await _state.TryBeginChunkAsync(chunk.Id, CancellationToken.None), Is.True);
        Assert.That((await FieldsAsync("_ext-ris/tasks/enqueues/ext-ris-task1"))["status"], Is.EqualTo("PROCESSING"));

        DatapointRecord[] records =
        [
            new("a.jpg", DatapointStatus.Indexed, "md5-a", 11, null),
            new("dir/b.png", DatapointStatus.Indexed, "md5-b", 12, null),
            new("c.gif", DatapointStatus.Skipped, "md5-c", 13, "not an image"),
        ];
        var outcome = new ChunkOutcome(chunk.Id, BackfillStatus.Done, 3, 1280, "gs://e/datapoints/ext-ris-task1.json", null, records);
        Assert.That(await _state.CompleteChunkAsync(outcome, CancellationToken.None), Is.True);

        var done = await _store.GetAsync(Tasks);
        Assert.That(await FieldsAsync(Tasks), Is.EquivalentTo(Fields(
            ("totalLength", 3L), ("processedLength", 3L), ("status", "DONE"), ("runId", "run-1"), ("chunkCount", 1L))));
        Assert.That(await FieldsAsync(Metadata), Is.EquivalentTo(Fields(("outputShape", 1280L))));
        Assert.That(await FieldsAsync("_ext-ris/tasks/enqueues/ext-ris-task1"), Is.EquivalentTo(Fields(
            ("taskId", chunk.Id), ("status", "DONE"), ("objects", new object?[] { "a.jpg", "dir/b.png", "c.gif" }), ("filePath", outcome.FilePath))));
        Assert.That(await FieldsAsync("_ext-ris/metadata/datapoints/dir%2Fb.png"), Is.EquivalentTo(Fields(
            ("path", "dir/b.png"), ("status", "INDEXED"), ("md5Hash", "md5-b"), ("generation", 12L), ("reason", null))));
        Assert.That(await FieldsAsync("_ext-ris/metadata/datapoints/c.gif"), Is.EquivalentTo(Fields(
            ("path", "c.gif"), ("status", "SKIPPED"), ("md5Hash", "md5-c"), ("generation", 13L), ("reason", "not an image"))));

        var chunkRecord = (await _state.ReadBackfillChunkAsync(chunk.Id, CancellationToken.None))!;
        Assert.That((chunkRecord.TaskId, chunkRecord.Status, chunkRecord.FilePath, chunkRecord.Error, chunkRecord.Counted),
            Is.EqualTo((chunk.Id, (BackfillStatus?)BackfillStatus.Done, outcome.FilePath, (string?)null, true)));
        Assert.That(chunkRecord.Objects, Is.EqualTo(chunk.Objects));
        foreach (var record in records)
        {
            Assert.That(await _state.GetDatapointRecordAsync(record.ObjectName, CancellationToken.None), Is.EqualTo(record));
            Assert.That(CoordinationState.ReadDatapointRecord((await _store.GetAsync(_state.Paths.Datapoint(record.ObjectName)))!), Is.EqualTo(record));
        }

        var pending = new DocumentSnapshot(Tasks, Fields(("status", "PENDING")));
        Assert.That(_state.CompletedBackfill(new DocumentChange(Tasks, pending, done)), Is.EqualTo(new BackfillRun("run-1", BackfillStatus.Done, 3, 3, 1, null)));
        Assert.That(_state.CompletedBackfill(new DocumentChange(Tasks, done, done)), Is.Null, "DONE to DONE is no completion");
        Assert.That(await _state.CompleteChunkAsync(outcome, CancellationToken.None), Is.False, "a chunk is counted once");
    }

    [Test]
    public async Task DocumentsAsTheOriginalExtensionWroteThemReadAsTyped()
    {
        await _store.SetAsync(Tasks, Fields(("totalLength", 2L), ("processedLength", 2L), ("status", "DONE")), SetMode.Overwrite);
        await _store.SetAsync(Metadata, Fields(
            ("outputShape", 1280L), ("status", "INDEX_DEPLOYED"), ("index", Index), ("indexEndpoint", Endpoint), ("publicEndpointDomainName", Domain)), SetMode.Overwrite);
        await _store.SetAsync("_ext-ris/tasks/enqueues/ext-ris-task1", Fields(
            ("taskId", "ext-ris-task1"), ("status", "DONE"), ("objects", new object?[] { "a.jpg" }), ("filePath", "gs://e/datapoints/ext-ris-task1.json")), SetMode.Overwrite);

        Assert.That(await _state.ReadBackfillRunAsync(CancellationToken.None), Is.EqualTo(new BackfillRun(null, BackfillStatus.Done, 2, 2, null, null)));
        Assert.That(await _state.ReadMetadataAsync(CancellationToken.None), Is.EqualTo(new IndexMetadata(
            IndexStatus.Deployed, null, Index, Endpoint, Domain, 1280, EmbeddingSettings.BeforeMatchColor, null, null, null)));
        Assert.That((await _state.ReadBackfillChunkAsync("ext-ris-task1", CancellationToken.None))!.Objects, Is.EqualTo(new[] { "a.jpg" }));
        Assert.That((await _state.ReadIndexAvailabilityAsync(CancellationToken.None)).Deployed, Is.EqualTo(new DeployedIndex(Index, Endpoint, Domain)));
    }

    private async Task<IReadOnlyDictionary<string, object?>> FieldsAsync(string path) =>
        (await _store.GetAsync(path))?.Fields ?? throw new AssertionException($"{path} does not exist");

    private static Dictionary<string, object?> Fields(params (string Name, object? Value)[] fields) =>
        fields.ToDictionary(f => f.Name, f => f.Value);
}
