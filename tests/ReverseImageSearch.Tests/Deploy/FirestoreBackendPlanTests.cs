namespace ReverseImageSearch.Tests.Deploy;

/// <summary>
/// The plans of `deploy.sh` for deploy/sample.env, which chooses INDEX_BACKEND=firestore: a Firestore vector index of
/// the model's dimension made before any function, nothing of Vertex AI, and an uninstall that says and deletes the
/// vector documents and index.
/// </summary>
public sealed class FirestoreBackendPlanTests
{
    private const string Project = "my-project";
    private const string Instance = "reverse-image-search";
    private const string Collection = $"vectors-{Instance}";

    private TempDir _temp = null!;

    [SetUp]
    public void CreateTemp() => _temp = new TempDir();

    [TearDown]
    public void Cleanup() => _temp.Dispose();

    private async Task<ProcessResult> PlanAsync(params string[] args)
    {
        var result = await DeployScript.RunAsync(_temp.Path, null, args);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        return result;
    }

    [Test]
    public async Task TheSampleInstallsFirestoreVectorSearchWithAnIndexOf1280DimensionsAndNoVertexAi()
    {
        Assert.That(DeployScript.SampleEnvText, Does.Contain("\nINDEX_BACKEND=firestore\n"), "new installations get Firestore");
        var result = await PlanAsync("--env-file", DeployScript.SampleEnv, "--dry-run");
        var plan = result.Plan;

        var creates = plan.Where(c => c.Is("gcloud", "firestore", "indexes", "composite", "create")).ToArray();
        Assert.That(creates, Has.Length.EqualTo(2), "the plain vector index and the one a search within a folder needs");
        var create = creates[0];
        const string VectorField = """field-path=embedding,vector-config={"dimension":"1280","flat":"{}"}""";
        Assert.Multiple(() =>
        {
            Assert.That(creates.Select(c => c.Value("--collection-group")), Has.All.EqualTo(Collection));
            Assert.That(creates.Select(c => c.Value("--query-scope")), Has.All.EqualTo("collection"));
            Assert.That(create.Value("--field-config"), Is.EqualTo(VectorField));
            Assert.That(creates[1].Values("--field-config"), Is.EqualTo(new[] { "field-path=folders,array-config=contains", VectorField }),
                "the folders prefilter field, then the vector (the Firestore adapter's folder search)");
            Assert.That(creates.Select(c => c.Value("--database")), Has.All.EqualTo("(default)"));
            Assert.That(creates.Select(c => c.Value("--project")), Has.All.EqualTo(Project));
            Assert.That(creates.Where(c => c.Has("--async")), Is.Empty, "the creations are awaited");
        });

        var firstDeploy = plan.ToList().FindIndex(c => c.Is("gcloud", "functions", "deploy"));
        Assert.That(plan.ToList().IndexOf(create), Is.LessThan(firstDeploy), "the index exists before any function runs");

        Assert.Multiple(() =>
        {
            Assert.That(plan.Where(c => c.Line.Contains("aiplatform", StringComparison.Ordinal)).Select(c => c.Line), Is.Empty, "no Vertex AI API, role or trigger");
            Assert.That(plan.Where(c => c.Is("gcloud", "ai")), Is.Empty, "no Vertex AI command");
            Assert.That(plan.Where(c => c.Is("gcloud", "projects", "get-iam-policy")), Is.Empty, "no audit-log check");
            Assert.That(result.StandardError, Does.Not.Contain("audit"));
            Assert.That(plan.Where(c => c.Is("gcloud", "functions", "deploy")).Select(c => c.Words[3]), Is.EquivalentTo(new[]
            {
                "backfillTrigger", "backfillTask", "datapointWriteTask", "createIndexTrigger", "streamUpdateDatapoint", "streamRemoveDatapoint", "queryIndex",
            }.Select(f => $"ext-{Instance}-{f}")), "onIndexCreated and onIndexDeployed have no events to react to");
            var roles = plan.Where(c => c.Is("gcloud", "projects", "add-iam-policy-binding") && c.Value("--member")!.Contains($"ext-{Instance}@", StringComparison.Ordinal))
                .Select(c => c.Value("--role")).ToArray();
            Assert.That(roles, Is.EquivalentTo(new[] { "roles/datastore.user", "roles/datastore.indexAdmin", "roles/eventarc.eventReceiver" }),
                "project roles of the functions' account: no Vertex AI role");
            var queryRoles = plan.Where(c => c.Is("gcloud", "projects", "add-iam-policy-binding") && c.Value("--member")!.Contains($"exq-{Instance}@", StringComparison.Ordinal))
                .Select(c => c.Value("--role")).ToArray();
            Assert.That(queryRoles, Is.EqualTo(new[] { "roles/datastore.viewer" }), "queryIndex reads the vector documents and nothing else");
        });

        var envFile = plan.First(c => c.Is("gcloud", "functions", "deploy")).Value("--env-vars-file")!;
        Assert.That(File.ReadAllText(envFile), Does.Contain("INDEX_BACKEND: 'firestore'"));
    }

    [Test]
    public async Task AnotherModelTakesItsDimensionFromVectorDimension()
    {
        var env = _temp.Write("model.env", DeployScript.SampleWith(new Dictionary<string, string?>
        {
            ["MODEL_URL"] = "https://example.com/model.onnx",
            ["VECTOR_DIMENSION"] = "512",
        }));
        var creates = (await PlanAsync("--env-file", env, "--dry-run")).Plan.Where(c => c.Is("gcloud", "firestore", "indexes", "composite", "create")).ToArray();
        Assert.That(creates.Select(c => c.Values("--field-config").Last()).ToArray(), Has.Length.EqualTo(2).And.All.Contain("\"dimension\":\"512\""));

        var unknown = _temp.Write("unknown.env", DeployScript.SampleWith(new Dictionary<string, string?> { ["MODEL_URL"] = "https://example.com/model.onnx" }));
        var result = await PlanAsync("--env-file", unknown, "--dry-run");
        Assert.That(result.Plan.Where(c => c.Is("gcloud", "firestore", "indexes")), Is.Empty);
        Assert.That(result.StandardError, Does.Contain("createIndexTrigger makes the index"));
    }

    [Test]
    public async Task UninstallSaysThenDeletesTheVectorIndexAndDocumentsAndTouchesNoVertexAi()
    {
        var result = await PlanAsync("uninstall", "--env-file", DeployScript.SampleEnv, "--dry-run");
        var plan = result.Plan.ToList();
        var delete = plan.FindIndex(c => c.Is("gcloud", "firestore", "indexes", "composite", "delete"));
        var bulk = plan.FindIndex(c => c.Is("gcloud", "firestore", "bulk-delete"));
        Assert.Multiple(() =>
        {
            Assert.That(delete, Is.GreaterThanOrEqualTo(0));
            Assert.That(plan[bulk].Value("--collection-ids"), Is.EqualTo(Collection), "only this instance's vector documents");
            Assert.That(plan.Where(c => c.Is("gcloud", "ai")), Is.Empty);
            Assert.That(result.StandardError, Does.Contain($"deleting the vector index and every vector document of collection id\n  {Collection}"),
                "said, with what is deleted");
        });
    }

    [TestCase("INDEX_BACKEND", "bigquery", "must be one of firestore, vertex")]
    [TestCase("DISTANCE_MEASURE", "L1_DISTANCE", "INDEX_BACKEND=firestore")]
    [TestCase("VECTOR_DIMENSION", "4096", "VECTOR_DIMENSION")]
    public async Task WrongValuesStopBeforeAnyCommand(string key, string value, string message)
    {
        var env = _temp.Write("bad.env", DeployScript.SampleWith(new Dictionary<string, string?> { [key] = value }));
        var result = await DeployScript.RunAsync(_temp.Path, null, "--env-file", env, "--dry-run");
        Assert.That(result.ExitCode, Is.Not.EqualTo(0));
        Assert.That(result.StandardError, Does.Contain(message));
        Assert.That(result.Plan, Is.Empty);
    }
}
