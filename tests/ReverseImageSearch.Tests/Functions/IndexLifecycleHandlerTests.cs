using System.Text;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Functions;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>createIndexTrigger, onIndexCreated and onIndexDeployed facing duplicates, strangers and failures.</summary>
[Parallelizable(ParallelScope.None)]
public class IndexLifecycleHandlerTests
{
    private const string CreateIndexMethod = "google.cloud.aiplatform.v1.IndexService.CreateIndex";
    private const string DeployIndexMethod = "google.cloud.aiplatform.v1.IndexEndpointService.DeployIndex";

    [Test]
    public async Task ADuplicateDoneEventAfterDeploymentCreatesNoSecondIndex()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 3).StartAsync();
        await stack.WaitUntilDeployedAsync();
        var before = await stack.MetadataDocumentAsync();
        var tasks = await stack.TasksDocumentAsync();
        var pending = new DocumentSnapshot(tasks!.Path, new Dictionary<string, object?> { ["status"] = "PENDING" });

        await stack.Services.GetRequiredService<CreateIndexTrigger>().HandleAsync(new DocumentChange(tasks.Path, pending, tasks), CancellationToken.None);

        var after = await stack.MetadataDocumentAsync();
        Assert.That(after!.Fields, Is.EquivalentTo(before!.Fields), "the claim is refused: nothing is created or overwritten");
    }

    [Test]
    public async Task AuditEntriesOfOtherIndexesAndEndpointsOfTheProjectAreIgnored()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 0).StartAsync(run: false);
        var metadataPath = stack.State.Paths.Metadata;
        var mine = new Dictionary<string, object?>
        {
            ["status"] = "INDEX_BUILDING",
            ["operation"] = "projects/demo-reverse-image-search/locations/us-central1/indexes/1/operations/9",
        };
        await stack.Documents.SetAsync(metadataPath, mine, SetMode.Overwrite);

        var otherIndex = new AuditLogEvent("aiplatform.googleapis.com", CreateIndexMethod,
            "projects/demo-reverse-image-search/locations/us-central1/indexes/2", "projects/demo-reverse-image-search/locations/us-central1/indexes/2/operations/5", false, true);
        await stack.Services.GetRequiredService<OnIndexCreated>().HandleAsync(otherIndex, CancellationToken.None);

        var otherEndpoint = new AuditLogEvent("aiplatform.googleapis.com", DeployIndexMethod,
            "projects/demo-reverse-image-search/locations/us-central1/indexEndpoints/77", "projects/demo-reverse-image-search/locations/us-central1/indexEndpoints/77/operations/1", false, true);
        await stack.Services.GetRequiredService<OnIndexDeployed>().HandleAsync(otherEndpoint, CancellationToken.None);

        var metadata = await stack.Documents.GetAsync(metadataPath);
        Assert.That(metadata!.Fields, Is.EquivalentTo(mine));
    }

    [Test]
    public async Task AFailedIndexCreationIsRecordedInTheMetadataDocument()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 0).StartAsync(run: false);
        var options = stack.Options;
        var objects = stack.Services.GetRequiredService<IObjectStore>();
        await objects.WriteAsync(options.EmbeddingsBucket, "datapoints/broken.json", Encoding.UTF8.GetBytes("{\"id\": \"a\", \"embedding\": [1, 2]}\n"), "application/json");

        var vectorIndex = stack.Services.GetRequiredService<IVectorIndexService>();
        var operation = await vectorIndex.CreateIndexAsync(new IndexDefinition(
            "broken", options.DatapointsUri, 1280, 100, options.DistanceMeasure, options.NormalizeToUnitLength, options.ShardSize, options.Algorithm));
        await LocalStackHarness.WaitUntilAsync(async () => (await vectorIndex.GetOperationAsync(operation.Name)).Done, TimeSpan.FromSeconds(30), "the build to fail");
        await stack.Documents.SetAsync(stack.State.Paths.Metadata, new Dictionary<string, object?> { ["status"] = "INDEX_BUILDING", ["operation"] = operation.Name }, SetMode.Overwrite);

        await stack.Services.GetRequiredService<OnIndexCreated>().HandleAsync(
            new AuditLogEvent("aiplatform.googleapis.com", CreateIndexMethod, ResourceNames.OwnerOfOperation(operation.Name), operation.Name, false, true),
            CancellationToken.None);

        var metadata = await stack.MetadataDocumentAsync();
        Assert.That(metadata!.GetString("status"), Is.EqualTo("INDEX_BUILDING"), "no endpoint for a failed index");
        var error = (IReadOnlyDictionary<string, object?>)metadata["error"]!;
        Assert.That(error["function"], Is.EqualTo("onIndexCreated"));
        Assert.That((string)error["message"]!, Does.StartWith("Index creation failed:").And.Contain("broken.json"));
    }

    // A fault that outlives the pipeline's retries (a quota, a missing permission, a long outage) must not leave the
    // installation silently at INDEX_BUILDING: its reason is in the metadata document and the delivery fails so it is retried.
    [Test]
    public async Task AnIndexCreationThatKeepsFailingIsRecordedWithItsReasonAndRetried()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 0).StartAsync(run: false);
        await stack.Documents.SetAsync(stack.State.Paths.Metadata, new Dictionary<string, object?> { ["outputShape"] = 1280L }, SetMode.Overwrite);
        var failing = new UnavailableVectorIndex(new ServiceException(429, "RESOURCE_EXHAUSTED", "Quota exceeded for aiplatform.googleapis.com/index_count"));
        var trigger = new CreateIndexTrigger(failing, stack.State, stack.Options, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<CreateIndexTrigger>.Instance);
        var tasks = stack.State.Paths.Tasks;
        var change = new DocumentChange(tasks,
            new DocumentSnapshot(tasks, new Dictionary<string, object?> { ["status"] = "PROCESSING" }),
            new DocumentSnapshot(tasks, new Dictionary<string, object?> { ["status"] = "DONE", ["outputShape"] = 1280L }));

        Assert.ThrowsAsync<ServiceException>(() => trigger.HandleAsync(change, CancellationToken.None));

        var metadata = await stack.MetadataDocumentAsync();
        var error = (IReadOnlyDictionary<string, object?>)metadata!["error"]!;
        Assert.That(error["function"], Is.EqualTo("createIndexTrigger"));
        Assert.That((string)error["message"]!, Does.StartWith("Creating the index failed: RESOURCE_EXHAUSTED (429): Quota exceeded"));
    }

    private sealed class UnavailableVectorIndex(ServiceException failure) : IVectorIndexService
    {
        public Task<LongRunningOperation> CreateIndexAsync(IndexDefinition definition, CancellationToken cancellationToken = default) => throw failure;

        public Task<LongRunningOperation> GetOperationAsync(string operationName, CancellationToken cancellationToken = default) => throw failure;

        public Task<LongRunningOperation> CreateIndexEndpointAsync(string displayName, CancellationToken cancellationToken = default) => throw failure;

        public Task<LongRunningOperation> DeployIndexAsync(string indexEndpoint, DeployedIndexSpec deployedIndex, CancellationToken cancellationToken = default) => throw failure;

        public Task<IndexEndpointInfo> GetIndexEndpointAsync(string indexEndpoint, CancellationToken cancellationToken = default) => throw failure;

        public Task UpsertDatapointsAsync(string index, IReadOnlyList<IndexDatapoint> datapoints, CancellationToken cancellationToken = default) => throw failure;

        public Task RemoveDatapointsAsync(string index, IReadOnlyList<string> datapointIds, CancellationToken cancellationToken = default) => throw failure;

        public Task<IReadOnlyList<IndexDatapoint>> ReadDatapointsAsync(string publicEndpointDomainName, string indexEndpoint, string deployedIndexId, IReadOnlyList<string> datapointIds, CancellationToken cancellationToken = default) => throw failure;

        public Task<IReadOnlyList<QueryNeighbors>> FindNeighborsAsync(string publicEndpointDomainName, string indexEndpoint, string deployedIndexId, IReadOnlyList<NeighborQuery> queries, int neighborCount, CancellationToken cancellationToken = default) => throw failure;

        public Task<LongRunningOperation> UndeployIndexAsync(string indexEndpoint, string deployedIndexId, CancellationToken cancellationToken = default) => throw failure;

        public Task<LongRunningOperation> DeleteIndexEndpointAsync(string indexEndpoint, CancellationToken cancellationToken = default) => throw failure;

        public Task<LongRunningOperation> DeleteIndexAsync(string index, CancellationToken cancellationToken = default) => throw failure;
    }

    [Test]
    public async Task AnEntryArrivingBeforeTheOperationIsRecordedFailsSoItIsDeliveredAgain()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 0).StartAsync(run: false);
        Assert.That(await stack.State.ClaimIndexCreationAsync(TimeSpan.FromMinutes(10), CancellationToken.None), Has.Property("Outcome").EqualTo(IndexCreationClaimOutcome.Claimed));
        var operation = "projects/demo-reverse-image-search/locations/us-central1/indexes/1/operations/9";

        Assert.ThrowsAsync<InvalidOperationException>(() => stack.Services.GetRequiredService<OnIndexCreated>().HandleAsync(
            new AuditLogEvent("aiplatform.googleapis.com", CreateIndexMethod, ResourceNames.OwnerOfOperation(operation), operation, false, true),
            CancellationToken.None));
    }

    [Test]
    public async Task ADoneEventFindingAClaimWithoutAnOperationFailsSoItIsDeliveredAgainUntilTheIndexIsCreated()
    {
        // The holder of the claim died between claiming and recording the operation (a kill, a lost instance).
        await using var stack = await LocalStackHarness.Create(imageCount: 0).StartAsync(run: false);
        var tasksPath = stack.State.Paths.Tasks;
        await stack.Documents.SetAsync(stack.State.Paths.Metadata, new Dictionary<string, object?> { ["outputShape"] = 1280L }, SetMode.Merge);
        await stack.Documents.SetAsync(tasksPath, new Dictionary<string, object?> { ["status"] = "DONE" }, SetMode.Overwrite);
        var deadHolder = await stack.State.ClaimIndexCreationAsync(TimeSpan.FromMinutes(10), CancellationToken.None);
        Assert.That(deadHolder.Outcome, Is.EqualTo(IndexCreationClaimOutcome.Claimed));
        var done = await stack.Documents.GetAsync(tasksPath);
        var change = new DocumentChange(tasksPath, new DocumentSnapshot(tasksPath, new Dictionary<string, object?> { ["status"] = "PROCESSING" }), done);
        var trigger = stack.Services.GetRequiredService<CreateIndexTrigger>();

        // A redelivery while the claim is young must not succeed silently: nothing would send the event again.
        Assert.ThrowsAsync<InvalidOperationException>(() => trigger.HandleAsync(change, CancellationToken.None));
        Assert.That((await stack.MetadataDocumentAsync())!.GetString("operation"), Is.Null);

        // A later delivery, once the claim is abandoned, takes it over and creates the index.
        await stack.Documents.SetAsync(stack.State.Paths.Metadata, new Dictionary<string, object?> { ["indexCreationClaimedAt"] = DateTimeOffset.UtcNow.AddHours(-1) }, SetMode.Merge);
        await trigger.HandleAsync(change, CancellationToken.None);
        var metadata = await stack.MetadataDocumentAsync();
        Assert.That(metadata!.GetString("operation"), Does.Contain("/operations/"));
        Assert.That(metadata.GetString("status"), Is.EqualTo("INDEX_BUILDING"));

        // Had the first holder only been slow, its late record must not replace the operation now in use.
        Assert.That(await stack.State.RecordIndexCreationAsync(deadHolder.Token!, "projects/p/locations/l/indexes/9/operations/1", CancellationToken.None), Is.False);
        Assert.That((await stack.MetadataDocumentAsync())!.GetString("operation"), Is.EqualTo(metadata.GetString("operation")));
    }

    [Test]
    public async Task ADeploymentFinishedBeforeOnIndexCreatedRecordsItIsNotTakenBackToDeploying()
    {
        // A fast deployment's audit entry can reach onIndexDeployed before onIndexCreated writes INDEX_DEPLOYING.
        await using var stack = await LocalStackHarness.Create(imageCount: 0).StartAsync(run: false);
        var deployed = new Dictionary<string, object?>
        {
            ["status"] = "INDEX_DEPLOYED",
            ["index"] = "projects/p/locations/l/indexes/1",
            ["indexEndpoint"] = "projects/p/locations/l/indexEndpoints/2",
            ["publicEndpointDomainName"] = "localhost",
        };
        await stack.Documents.SetAsync(stack.State.Paths.Metadata, deployed, SetMode.Overwrite);

        await stack.State.RecordDeploymentRequestedAsync("projects/p/locations/l/indexes/1", "projects/p/locations/l/indexEndpoints/2", CancellationToken.None);

        Assert.That((await stack.State.ReadIndexAvailabilityAsync(CancellationToken.None)).Readiness, Is.EqualTo(IndexReadiness.Deployed));
    }

    [Test]
    public async Task ARequestedDeploymentIsRecordedAsDeploying()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 0).StartAsync(run: false);
        await stack.Documents.SetAsync(stack.State.Paths.Metadata, new Dictionary<string, object?> { ["status"] = "INDEX_BUILDING" }, SetMode.Overwrite);

        await stack.State.RecordDeploymentRequestedAsync("projects/p/locations/l/indexes/1", "projects/p/locations/l/indexEndpoints/2", CancellationToken.None);

        var metadata = await stack.MetadataDocumentAsync();
        Assert.That(metadata!.GetString("status"), Is.EqualTo("INDEX_DEPLOYING"));
        Assert.That(metadata.GetString("indexEndpoint"), Is.EqualTo("projects/p/locations/l/indexEndpoints/2"));
    }

    [Test]
    public async Task TheFirstEntryOfAnOperationIsIgnoredAndOnlyTheLastActs()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 0).StartAsync(run: false);
        var operation = "projects/demo-reverse-image-search/locations/us-central1/indexes/1/operations/9";
        await stack.Documents.SetAsync(stack.State.Paths.Metadata, new Dictionary<string, object?> { ["status"] = "INDEX_BUILDING", ["operation"] = operation }, SetMode.Overwrite);

        // A first entry would fail loudly if acted on: the operation does not exist in the local service.
        await stack.Services.GetRequiredService<OnIndexCreated>().HandleAsync(
            new AuditLogEvent("aiplatform.googleapis.com", CreateIndexMethod, ResourceNames.OwnerOfOperation(operation), operation, true, false),
            CancellationToken.None);

        Assert.That((await stack.MetadataDocumentAsync())!.GetString("status"), Is.EqualTo("INDEX_BUILDING"));
    }
}
