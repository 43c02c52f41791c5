namespace ReverseImageSearch.Tests.Deploy;

/// <summary>The uninstall plan of `deploy.sh uninstall --dry-run`.</summary>
public class UninstallPlanTests
{
    private const string Instance = "reverse-image-search";
    private TempDir _temp = null!;

    [SetUp]
    public void CreateTemp() => _temp = new TempDir();

    [TearDown]
    public void Cleanup() => _temp.Dispose();

    [Test]
    public async Task RemovesTheVectorSearchResourcesBeforeTheFunctionsAndQueues()
    {
        var result = await DeployScript.RunAsync(_temp.Path, null, "uninstall", "--env-file", DeployScript.VertexSampleEnv(_temp.Path), "--dry-run");
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        var plan = result.Plan.ToList();

        var metadata = plan.FindIndex(c => c.Is("curl") && c.Line.Contains($"/documents/_ext-{Instance}/metadata", StringComparison.Ordinal));
        var undeploy = plan.FindIndex(c => c.Is("gcloud", "ai", "index-endpoints", "undeploy-index"));
        var deleteEndpoint = plan.FindIndex(c => c.Is("gcloud", "ai", "index-endpoints", "delete"));
        var deleteIndex = plan.FindIndex(c => c.Is("gcloud", "ai", "indexes", "delete"));
        var firstFunction = plan.FindIndex(c => c.Is("gcloud", "functions", "delete"));
        var firstQueue = plan.FindIndex(c => c.Is("gcloud", "tasks", "queues", "delete"));

        Assert.That(metadata, Is.GreaterThanOrEqualTo(0), "the metadata document is read for the index names");
        Assert.That(new[] { metadata, undeploy, deleteEndpoint, deleteIndex, firstFunction }, Is.Ordered.Ascending.And.All.GreaterThanOrEqualTo(0));
        Assert.That(firstQueue, Is.GreaterThan(deleteIndex));
        Assert.That(plan[undeploy].Value("--deployed-index-id"), Is.EqualTo("ext_reverse_image_search_index"));
        Assert.That(plan[undeploy].Value("--region"), Is.EqualTo("us-central1"));
        Assert.That(plan[deleteEndpoint].Words[4], Is.EqualTo(plan[undeploy].Words[4]), "the endpoint undeployed is the one deleted");

        Assert.That(plan.Where(c => c.Is("gcloud", "functions", "delete")).Select(c => c.Words[3]), Is.EquivalentTo(new[]
        {
            "backfillTrigger", "backfillTask", "createIndexTrigger", "streamUpdateDatapoint", "streamRemoveDatapoint", "datapointWriteTask",
            "queryIndex", "onIndexCreated", "onIndexDeployed",
        }.Select(f => $"ext-{Instance}-{f}")));
        Assert.That(plan.Where(c => c.Is("gcloud", "tasks", "queues", "delete")).Select(c => c.Words[4]), Is.EquivalentTo(new[]
        {
            $"ext-{Instance}-backfillTrigger", $"ext-{Instance}-backfillTask", $"ext-{Instance}-datapointWriteTask",
        }));
        Assert.That(plan.Where(c => c.IsGcloud && c.Has("delete")), Has.All.Matches<PlannedCommand>(c => c.Has("--quiet")),
            "deletions never prompt");
        Assert.That(plan.Any(c => c.Is("gcloud", "storage", "rm")), Is.False, "the embeddings bucket stays without --delete-data");
        Assert.That(plan.Where(c => c.Line.Contains("my-project.appspot.com", StringComparison.Ordinal)).Select(c => c.Line), Is.EqualTo(new[]
        {
            $"gcloud storage buckets remove-iam-policy-binding gs://my-project.appspot.com --project=my-project --member=serviceAccount:ext-{Instance}@my-project.iam.gserviceaccount.com --role=roles/storage.objectViewer '--format=value(etag)'",
        }), "the images bucket is never touched, except for taking back the functions' read access");
        Assert.That(result.StandardOutput, Does.Not.Contain("Bearer ey"), "no real token in the plan");
    }

    [Test]
    public async Task FindsEveryIndexAndEndpointByTheInstancesDisplayNamesAndRemovesBothAccounts()
    {
        var result = await DeployScript.RunAsync(_temp.Path, null, "uninstall", "--env-file", DeployScript.VertexSampleEnv(_temp.Path), "--dry-run");
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        var plan = result.Plan.ToList();
        Assert.That(plan.Single(c => c.Is("gcloud", "ai", "indexes", "list")).Value("--filter"), Is.EqualTo($"displayName=ext-{Instance}-index"));
        Assert.That(plan.Where(c => c.Is("gcloud", "ai", "index-endpoints", "list")).Select(c => c.Value("--filter")),
            Does.Contain($"displayName=ext-{Instance}-endpoint"));
        Assert.That(plan.Where(c => c.Is("gcloud", "iam", "service-accounts", "delete")).Select(c => c.Words[4]), Is.EquivalentTo(new[]
        {
            $"ext-{Instance}@my-project.iam.gserviceaccount.com", $"exq-{Instance}@my-project.iam.gserviceaccount.com",
        }));
        Assert.That(plan.Where(c => c.Is("gcloud", "projects", "remove-iam-policy-binding")).Select(c => c.Value("--role")), Is.EquivalentTo(new[]
        {
            "roles/datastore.user", "roles/aiplatform.user", "roles/eventarc.eventReceiver", "roles/datastore.viewer", "roles/aiplatform.viewer",
        }));
    }

    /// <summary>
    /// Without its coordination documents a reinstall starts afresh and builds a new index (a kept metadata document
    /// would say INDEX_DEPLOYED for the deleted one). Deleted after the functions, which would write them again, and
    /// only the instance's own: bulk-delete takes collection ids database-wide, so the per-image records and chunk
    /// documents (collection ids datapoints and enqueues, which another instance has too) are deleted by path.
    /// </summary>
    [TestCase("vertex")]
    [TestCase("firestore")]
    public async Task DeletesTheInstancesCoordinationDocumentsAfterTheFunctionsSayingSoFirst(string backend)
    {
        var env = _temp.Write("backend.env", DeployScript.SampleWith(new Dictionary<string, string?> { ["INDEX_BACKEND"] = backend }));
        var result = await DeployScript.RunAsync(_temp.Path, null, "uninstall", "--env-file", env, "--dry-run");
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        var plan = result.Plan.ToList();

        var lastFunction = plan.FindLastIndex(c => c.Is("gcloud", "functions", "delete"));
        var bulk = plan.FindIndex(c => c.Is("gcloud", "firestore", "bulk-delete") && c.Value("--collection-ids") == $"_ext-{Instance}");
        var records = plan.FindIndex(c => c.Is("curl") && c.Line.Contains($"/documents/_ext-{Instance}/metadata/datapoints?", StringComparison.Ordinal));
        var chunks = plan.FindIndex(c => c.Is("curl") && c.Line.Contains($"/documents/_ext-{Instance}/tasks/enqueues?", StringComparison.Ordinal));
        var writes = plan.FindIndex(c => c.Is("curl") && c.Line.Contains("/documents:batchWrite", StringComparison.Ordinal));
        Assert.Multiple(() =>
        {
            Assert.That(new[] { bulk, records, chunks, writes }, Has.All.GreaterThan(lastFunction), result.ToString());
            Assert.That(plan.Where(c => c.Is("gcloud", "firestore", "bulk-delete")).SelectMany(c => c.Value("--collection-ids")!.Split(',')),
                Has.None.AnyOf("datapoints", "enqueues", "metadata", "tasks"), "no collection id other instances share");
            Assert.That(result.StandardError, Does.Contain($"deleting the coordination documents of _ext-{Instance}"), "said before it is done");
            Assert.That(result.StandardError, Does.Not.Contain("is kept"));
        });
    }

    [Test]
    public async Task DeleteDataAlsoRemovesTheEmbeddingsBucket()
    {
        var result = await DeployScript.RunAsync(_temp.Path, null, "uninstall", "--env-file", DeployScript.VertexSampleEnv(_temp.Path), "--dry-run", "--delete-data");
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        var rm = result.Plan.Where(c => c.Is("gcloud", "storage", "rm")).ToList();
        Assert.That(rm, Has.Count.EqualTo(1));
        Assert.That(rm[0].Words, Does.Contain("--recursive").And.Contain($"gs://my-project-ext-{Instance}"));
    }

    [Test]
    public async Task DeleteDataIsRefusedForInstall()
    {
        var result = await DeployScript.RunAsync(_temp.Path, null, "--env-file", DeployScript.VertexSampleEnv(_temp.Path), "--dry-run", "--delete-data");
        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.StandardOutput, Is.Empty);
    }
}
