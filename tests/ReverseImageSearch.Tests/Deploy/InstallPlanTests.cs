using ReverseImageSearch.Gcp.Hosting;

namespace ReverseImageSearch.Tests.Deploy;

/// <summary>The install plan that `deploy.sh --dry-run` prints for deploy/sample.env.</summary>
public class InstallPlanTests
{
    private const string Project = "my-project";
    private const string Instance = "reverse-image-search";
    private const string Sa = $"ext-{Instance}@{Project}.iam.gserviceaccount.com";
    private const string QuerySa = $"exq-{Instance}@{Project}.iam.gserviceaccount.com";

    /// <summary>functionName, trigger words every deploy of it must carry, memory.</summary>
    private static readonly (string Name, string[] Trigger, string Memory)[] Functions =
    [
        ("backfillTrigger", ["--trigger-http", "--no-allow-unauthenticated"], "1GiB"),
        ("backfillTask", ["--trigger-http", "--no-allow-unauthenticated"], "1GiB"),
        ("datapointWriteTask", ["--trigger-http", "--no-allow-unauthenticated"], "1GiB"),
        ("createIndexTrigger",
            ["--trigger-event-filters=type=google.cloud.firestore.document.v1.updated", "--trigger-event-filters=database=(default)",
             $"--trigger-event-filters-path-pattern=document=_ext-{Instance}/tasks", "--trigger-location=<firestore-location>", "--retry",
             $"--trigger-service-account={Sa}"], "512Mi"),
        ("onIndexCreated",
            ["--trigger-event-filters=type=google.cloud.audit.log.v1.written", "--trigger-event-filters=serviceName=aiplatform.googleapis.com",
             "--trigger-event-filters=methodName=google.cloud.aiplatform.v1.IndexService.CreateIndex", "--trigger-location=global",
             $"--trigger-service-account={Sa}"], "512Mi"),
        ("onIndexDeployed",
            ["--trigger-event-filters=type=google.cloud.audit.log.v1.written", "--trigger-event-filters=serviceName=aiplatform.googleapis.com",
             "--trigger-event-filters=methodName=google.cloud.aiplatform.v1.IndexEndpointService.DeployIndex", "--trigger-location=global",
             $"--trigger-service-account={Sa}"], "512Mi"),
        ("streamUpdateDatapoint",
            ["--trigger-event-filters=type=google.cloud.storage.object.v1.finalized", "--trigger-event-filters=bucket=my-project.appspot.com",
             "--trigger-location=<img-bucket-location>", "--retry", $"--trigger-service-account={Sa}"], "1GiB"),
        ("streamRemoveDatapoint",
            ["--trigger-event-filters=type=google.cloud.storage.object.v1.deleted", "--trigger-event-filters=bucket=my-project.appspot.com",
             "--trigger-location=<img-bucket-location>", "--retry", $"--trigger-service-account={Sa}"], "512Mi"),
        ("queryIndex", ["--trigger-http", "--allow-unauthenticated"], "1GiB"),
    ];

    private TempDir _temp = null!;
    private ProcessResult _result = null!;
    private IReadOnlyList<PlannedCommand> _plan = null!;

    [OneTimeSetUp]
    public async Task RunDryRun()
    {
        _temp = new TempDir();
        _result = await DeployScript.RunAsync(_temp.Path, null, "--env-file", DeployScript.VertexSampleEnv(_temp.Path), "--dry-run");
        _plan = _result.Plan;
    }

    [OneTimeTearDown]
    public void Cleanup() => _temp.Dispose();

    private int IndexOf(Func<PlannedCommand, bool> match) => _plan.ToList().FindIndex(c => match(c));

    private List<PlannedCommand> All(params string[] prefix) => _plan.Where(c => c.Is(prefix)).ToList();

    [Test]
    public void SucceedsAndPrintsOnlyGcloudCommandsScopedToTheProject()
    {
        Assert.That(_result.ExitCode, Is.EqualTo(0), _result.ToString());
        Assert.That(_plan, Has.Count.GreaterThan(30));
        var stdoutLines = _result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(stdoutLines, Has.All.StartWith("+ "), "stdout carries the plan only; progress goes to stderr");
        Assert.That(_plan, Has.All.Matches<PlannedCommand>(c => c.IsGcloud), "an install runs gcloud only");
        Assert.That(_plan.Where(c => !c.Has($"--project={Project}") && !(c.Is("gcloud", "projects") && c.Words[3] == Project)).Select(c => c.Line), Is.Empty,
            "every command names the project explicitly, never the gcloud default");
        Assert.That(_result.StandardError, Does.Contain("Dry run"));
    }

    [Test]
    public void EnablesTheApis()
    {
        var enable = All("gcloud", "services", "enable");
        Assert.That(enable, Has.Count.EqualTo(1));
        string[] apis =
        [
            "aiplatform", "eventarc", "run", "cloudfunctions", "cloudbuild", "artifactregistry", "cloudtasks", "firestore",
            "storage", "iam", "pubsub", "logging",
        ];
        Assert.That(enable[0].Words, Is.SupersetOf(apis.Select(a => a + ".googleapis.com")));
        Assert.That(IndexOf(c => c.Is("gcloud", "services", "enable")), Is.Zero, "APIs come first");
    }

    [Test]
    public void CreatesTheServiceAccountAndGrantsItsRoles()
    {
        var create = IndexOf(c => c.Is("gcloud", "iam", "service-accounts", "create", $"ext-{Instance}"));
        Assert.That(create, Is.GreaterThanOrEqualTo(0), "service account ext-<instance> is created");
        Assert.That(IndexOf(c => c.Is("gcloud", "iam", "service-accounts", "describe", Sa)), Is.LessThan(create),
            "its existence is checked first (idempotent)");

        var projectRoles = All("gcloud", "projects", "add-iam-policy-binding", Project)
            .Where(c => c.Value("--member") == $"serviceAccount:{Sa}")
            .Select(c => c.Value("--role"))
            .ToList();
        // Storage and Cloud Tasks are granted per bucket and per queue (below), never project-wide.
        Assert.That(projectRoles, Is.EquivalentTo(new[] { "roles/datastore.user", "roles/aiplatform.user", "roles/eventarc.eventReceiver" }));
        Assert.That(_plan.Where(c => c.Value("--role") is { } role && (role.StartsWith("roles/storage.", StringComparison.Ordinal) || role == "roles/cloudtasks.enqueuer"))
            .Where(c => c.Is("gcloud", "projects")), Is.Empty, "no project-wide storage or enqueuer role");
        Assert.That(_plan.Any(c => c.Value("--role") == "roles/storage.admin"), Is.False, "no storage admin anywhere");
        Assert.That(All("gcloud", "projects", "add-iam-policy-binding"), Has.All.Matches<PlannedCommand>(c => c.Has("--condition=None")));

        var self = All("gcloud", "iam", "service-accounts", "add-iam-policy-binding", Sa);
        Assert.That(self, Has.Count.EqualTo(1));
        Assert.That(self[0].Value("--member"), Is.EqualTo($"serviceAccount:{Sa}"));
        Assert.That(self[0].Value("--role"), Is.EqualTo("roles/iam.serviceAccountUser"));

        var invokers = All("gcloud", "functions", "add-invoker-policy-binding");
        Assert.That(invokers.Select(c => c.Words[3]), Is.EquivalentTo(
            Functions.Where(f => f.Name != "queryIndex").Select(f => $"ext-{Instance}-{f.Name}")),
            "every non-public function lets the service account invoke it (Cloud Tasks OIDC, Eventarc)");
        Assert.That(invokers, Has.All.Matches<PlannedCommand>(c => c.Value("--member") == $"serviceAccount:{Sa}"));
        foreach (var invoker in invokers)
        {
            Assert.That(IndexOf(c => c.Is("gcloud", "functions", "deploy", invoker.Words[3])), Is.LessThan(IndexOf(c => c == invoker)),
                $"{invoker.Words[3]} is deployed before its invoker binding");
        }
    }

    [Test]
    public void QueryIndexRunsAsItsOwnReadOnlyAccount()
    {
        var create = IndexOf(c => c.Is("gcloud", "iam", "service-accounts", "create", $"exq-{Instance}"));
        Assert.That(create, Is.GreaterThanOrEqualTo(0), "service account exq-<instance> is created");
        Assert.That(IndexOf(c => c.Is("gcloud", "iam", "service-accounts", "describe", QuerySa)), Is.InRange(0, create - 1));
        Assert.That(_plan.Where(c => c.Value("--member") == $"serviceAccount:{QuerySa}").Select(c => (c.Words[1], c.Value("--role"))), Is.EquivalentTo(new[]
        {
            ("projects", "roles/datastore.viewer"), ("projects", "roles/aiplatform.viewer"),
        }), "it may read the metadata document and query the endpoint, nothing else");
        var query = All("gcloud", "functions", "deploy", $"ext-{Instance}-queryIndex").Single();
        Assert.That(query.Value("--service-account"), Is.EqualTo(QuerySa));
    }

    [Test]
    public void StorageRolesAreScopedToTheTwoBuckets()
    {
        var bindings = All("gcloud", "storage", "buckets", "add-iam-policy-binding");
        Assert.That(bindings.Select(c => (c.Words[4], c.Value("--member"), c.Value("--role"))), Is.EquivalentTo(new[]
        {
            ("gs://my-project.appspot.com", $"serviceAccount:{Sa}", "roles/storage.objectViewer"),
            ($"gs://{Project}-ext-{Instance}", $"serviceAccount:{Sa}", "roles/storage.objectAdmin"),
        }), "read on the images bucket, read and write on the embeddings bucket");
        var createBucket = IndexOf(c => c.Is("gcloud", "storage", "buckets", "create"));
        Assert.That(IndexOf(c => c == bindings[1]), Is.GreaterThan(createBucket), "the embeddings bucket exists before its binding");
    }

    [Test]
    public void TheEnqueuerRoleIsGrantedOnEachQueueOnly()
    {
        var bindings = All("gcloud", "tasks", "queues", "add-iam-policy-binding");
        Assert.That(bindings.Select(c => c.Words[4]), Is.EquivalentTo(new[]
        {
            $"ext-{Instance}-backfillTrigger", $"ext-{Instance}-backfillTask", $"ext-{Instance}-datapointWriteTask",
        }));
        Assert.That(bindings, Has.All.Matches<PlannedCommand>(c =>
            c.Value("--role") == "roles/cloudtasks.enqueuer" && c.Value("--member") == $"serviceAccount:{Sa}" && c.Value("--location") == "us-central1"));
    }

    [Test]
    public void TheEightNonCallableFunctionsAcceptInternalTrafficOnly()
    {
        var deploys = All("gcloud", "functions", "deploy");
        Assert.That(deploys.Where(c => c.Value("--ingress-settings") == "internal-only").Select(c => c.Words[3]), Is.EquivalentTo(
            Functions.Where(f => f.Name != "queryIndex").Select(f => $"ext-{Instance}-{f.Name}")));
        Assert.That(deploys.Single(c => c.Words[3] == $"ext-{Instance}-queryIndex").Value("--ingress-settings"), Is.EqualTo("all"),
            "the callable is called by apps from anywhere");
    }

    [Test]
    public void QueuesLimitDispatchAndConcurrency()
    {
        var limits = All("gcloud", "tasks", "queues", "create").ToDictionary(
            c => c.Words[4][$"ext-{Instance}-".Length..],
            c => (c.Value("--max-dispatches-per-second"), c.Value("--max-concurrent-dispatches")));
        Assert.That(limits, Is.EquivalentTo(new Dictionary<string, (string?, string?)>
        {
            ["backfillTrigger"] = ("1", "1"),
            ["backfillTask"] = ("5", "10"),
            ["datapointWriteTask"] = ("10", "20"),
        }));
    }

    [Test]
    public void CreatesTheEmbeddingsBucketInTheFunctionsRegion()
    {
        var create = All("gcloud", "storage", "buckets", "create", $"gs://{Project}-ext-{Instance}");
        Assert.That(create, Has.Count.EqualTo(1));
        Assert.That(create[0].Value("--location"), Is.EqualTo("us-central1"));
        Assert.That(_plan.Any(c => c.Is("gcloud", "storage", "buckets", "describe", $"gs://{Project}-ext-{Instance}")), Is.True);
        Assert.That(_plan.Any(c => c.Line.Contains("gs://my-project.appspot.com", StringComparison.Ordinal)
            && !c.Is("gcloud", "storage", "buckets", "describe")
            && !(c.Is("gcloud", "storage", "buckets", "add-iam-policy-binding") && c.Value("--role") == "roles/storage.objectViewer")),
            Is.False, "the images bucket is only described and made readable to the functions, never changed");
    }

    [Test]
    public void CreatesTheThreeQueuesBeforeAnyFunctionIsDeployed()
    {
        var creates = All("gcloud", "tasks", "queues", "create");
        Assert.That(creates.Select(c => c.Words[4]), Is.EquivalentTo(new[]
        {
            $"ext-{Instance}-backfillTrigger", $"ext-{Instance}-backfillTask", $"ext-{Instance}-datapointWriteTask",
        }));
        Assert.That(creates, Has.All.Matches<PlannedCommand>(c => c.Value("--location") == "us-central1"));
        Assert.That(creates.Single(c => c.Words[4].EndsWith("-backfillTask", StringComparison.Ordinal)).Value("--max-attempts"), Is.EqualTo("50"));

        var lastQueue = _plan.ToList().FindLastIndex(c => c.Is("gcloud", "tasks", "queues", "create"));
        var firstDeploy = IndexOf(c => c.Is("gcloud", "functions", "deploy"));
        Assert.That(firstDeploy, Is.GreaterThan(lastQueue), "no function may run before its queue exists");
    }

    [Test]
    public void DeploysTheNineFunctionsAsGen2DotnetWithTheirTriggers()
    {
        var deploys = All("gcloud", "functions", "deploy");
        Assert.That(deploys.Select(c => c.Words[3]), Is.EquivalentTo(Functions.Select(f => $"ext-{Instance}-{f.Name}")));
        foreach (var (name, trigger, memory) in Functions)
        {
            var deploy = deploys.Single(c => c.Words[3] == $"ext-{Instance}-{name}");
            var project = char.ToUpperInvariant(name[0]) + name[1..];
            using (Assert.EnterMultipleScope())
            {
                Assert.That(deploy.Has("--gen2"), Is.True, name);
                Assert.That(deploy.Value("--runtime"), Is.EqualTo("dotnet10"), name);
                Assert.That(deploy.Value("--region"), Is.EqualTo("us-central1"), name);
                Assert.That(deploy.Value("--source"), Is.EqualTo(TestPaths.RepoRoot), name);
                // Only a function whose project builds the embedder uploads the model; the others leave it out.
                var embeds = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "functions", project, project + ".csproj"))
                    .Contains("ReverseImageSearch.Embedding.csproj", StringComparison.Ordinal);
                Assert.That(deploy.Value("--ignore-file"), Is.EqualTo(embeds ? null : WithoutModel), name);
                Assert.That(deploy.Value("--set-build-env-vars"), Is.EqualTo($"GOOGLE_BUILDABLE=functions/{project}"), name);
                Assert.That(Directory.Exists(Path.Combine(TestPaths.RepoRoot, "functions", project)), Is.True, $"functions/{project} exists");
                Assert.That(deploy.Value("--entry-point"), Is.EqualTo($"ReverseImageSearch.Functions.{project}"), name);
                Assert.That(deploy.Value("--service-account"), Is.EqualTo(name == "queryIndex" ? QuerySa : Sa), name);
                Assert.That(deploy.Value("--memory"), Is.EqualTo(memory), name);
                Assert.That(deploy.Value("--env-vars-file"), Is.Not.Null, name);
                Assert.That(deploy.Words, Is.SupersetOf(trigger), name);
                if (name != "queryIndex")
                {
                    Assert.That(deploy.Value("--timeout"), Is.EqualTo("540s"), name);
                }
            }
        }
    }

    [Test]
    public void PointsEveryFunctionsStartupAndLivenessProbesAtItsHealthEndpoint()
    {
        var updates = All("gcloud", "run", "services", "update");
        Assert.That(updates.Select(c => c.Words[4]), Is.EquivalentTo(Functions.Select(f => $"ext-{Instance}-{f.Name}".ToLowerInvariant())),
            "each function's Cloud Run service (its name in lower case), once");
        foreach (var update in updates)
        {
            var startup = Probe(update.Value("--startup-probe"));
            var liveness = Probe(update.Value("--liveness-probe"));
            using (Assert.EnterMultipleScope())
            {
                Assert.That(update.Value("--region"), Is.EqualTo("us-central1"), update.Line);
                Assert.That(startup.GetValueOrDefault("httpGet.path"), Is.EqualTo(FunctionHealth.Path), update.Line);
                Assert.That(liveness.GetValueOrDefault("httpGet.path"), Is.EqualTo(FunctionHealth.Path), update.Line);
                // Cloud Run's limits: a startup probe's failureThreshold x periodSeconds at most 240 s (the default TCP probe's
                // whole window, kept), and no probe's timeout longer than its period.
                Assert.That(Seconds(startup, "failureThreshold") * Seconds(startup, "periodSeconds"), Is.EqualTo(240), update.Line);
                Assert.That(Seconds(startup, "timeoutSeconds"), Is.InRange(1, Seconds(startup, "periodSeconds")), update.Line);
                Assert.That(Seconds(liveness, "timeoutSeconds"), Is.InRange(1, Seconds(liveness, "periodSeconds")), update.Line);
                Assert.That(IndexOf(c => c.Is("gcloud", "functions", "deploy") && c.Words[3].Equals(update.Words[4], StringComparison.OrdinalIgnoreCase)),
                    Is.InRange(0, IndexOf(c => c == update) - 1), "the service exists once its function is deployed: " + update.Line);
            }
        }

        static Dictionary<string, string> Probe(string? value) =>
            (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "");

        static int Seconds(Dictionary<string, string> probe, string key) =>
            int.Parse(probe.GetValueOrDefault(key, "0"), System.Globalization.CultureInfo.InvariantCulture);
    }

    private const string WithoutModel = ".gcloudignore-without-model";

    [Test]
    public void TheUploadOfAFunctionThatDoesNotEmbedLeavesOutTheModelAndTheEmbedder()
    {
        // gcloud reads --ignore-file relative to --source, and includes only files beside it.
        var lines = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, WithoutModel));
        Assert.That(lines, Does.Contain("#!include:.gcloudignore"), "everything the default upload leaves out");
        Assert.That(lines, Does.Contain("models/").And.Contain("shared/Embedding/"));
        Assert.That(All("gcloud", "functions", "deploy").Count(c => c.Value("--ignore-file") == WithoutModel), Is.EqualTo(5),
            "the five functions that do not embed");
    }

    [Test]
    public void GivesEveryFunctionTheParametersInAnEnvVarsFile()
    {
        var files = All("gcloud", "functions", "deploy").Select(c => c.Value("--env-vars-file")).Distinct().ToList();
        Assert.That(files, Has.Count.EqualTo(1));
        Assert.That(files[0], Does.StartWith(_temp.Path), "generated under TMPDIR");
        var entries = File.ReadAllLines(files[0]!)
            .Where(l => !l.StartsWith('#') && l.Length > 0)
            .Select(l => l.Split(": ", 2))
            .ToDictionary(p => p[0], p => p[1]);
        string[] keys =
        [
            "IMG_BUCKET", "IMG_PATH", "DO_BACKFILL", "MODEL_URL", "MODEL_FROM_TF_HUB", "INPUT_SHAPE", "DISTANCE_MEASURE", "ALGORITHM_CONFIG",
            "N_COUNT", "BATCH_SIZE", "SHARD_SIZE", "MACHINE_TYPE", "ACCELERATOR_TYPE", "ACCELERATOR_COUNT", "MIN_REPLICA_COUNT",
            "MAX_REPLICA_COUNT", "LOCATION", "PROJECT_ID", "EXT_INSTANCE_ID", "SERVICE_ACCOUNT_EMAIL", "FUNCTION_URL_TEMPLATE",
        ];
        Assert.That(entries.Keys, Is.SupersetOf(keys));
        Assert.That(entries["INPUT_SHAPE"], Is.EqualTo("'224,224'"), "a value with a comma survives as one YAML string");
        Assert.That(entries["IMG_PATH"], Is.EqualTo("'products/photos'"));
        Assert.That(entries["SERVICE_ACCOUNT_EMAIL"], Is.EqualTo($"'{Sa}'"));
        Assert.That(entries["BACKFILL_MAX_ATTEMPTS"], Is.EqualTo("'50'"));
        Assert.That(entries["FUNCTION_URL_TEMPLATE"], Is.EqualTo("'https://{FUNCTION}-<project-number>.us-central1.run.app'"),
            "tasks go to the run.app URL, where Cloud Run counts Cloud Tasks as internal");
    }

    [Test]
    public void LooksUpTheTriggerLocationsBeforeDeploying()
    {
        var bucketLookup = IndexOf(c => c.Is("gcloud", "storage", "buckets", "describe", "gs://my-project.appspot.com"));
        var firestoreLookup = IndexOf(c => c.Is("gcloud", "firestore", "databases", "describe") && c.Has("--database=(default)"));
        var auditCheck = IndexOf(c => c.Is("gcloud", "projects", "get-iam-policy", Project));
        var firstDeploy = IndexOf(c => c.Is("gcloud", "functions", "deploy"));
        Assert.That(new[] { bucketLookup, firestoreLookup, auditCheck }, Has.All.InRange(0, firstDeploy - 1));
    }

    [Test]
    public void EnqueuesTheInstallTaskLast()
    {
        var last = _plan[^1];
        Assert.That(last.Is("gcloud", "tasks", "create-http-task"), Is.True, last.Line);
        Assert.That(last.Value("--queue"), Is.EqualTo($"ext-{Instance}-backfillTrigger"));
        Assert.That(last.Value("--location"), Is.EqualTo("us-central1"));
        Assert.That(last.Value("--url"), Is.EqualTo($"https://ext-{Instance}-backfilltrigger-<project-number>.us-central1.run.app"),
            "the run.app URL: the function accepts internal traffic only");
        Assert.That(last.Value("--body-content"), Is.EqualTo("""{"data":{}}"""));
        Assert.That(last.Value("--header"), Is.EqualTo("Content-Type: application/json"));
        Assert.That(last.Value("--oidc-service-account-email"), Is.EqualTo(Sa));
        Assert.That(All("gcloud", "tasks", "create-http-task"), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task LocationOverridesReplaceTheLookups()
    {
        var env = _temp.Write("override.env", DeployScript.SampleWith(new Dictionary<string, string?>
        {
            ["IMG_BUCKET_LOCATION"] = "US",
            ["FIRESTORE_LOCATION"] = "nam5",
        }));
        var run = await DeployScript.RunAsync(_temp.Path, null, "--env-file", env, "--dry-run", "--no-install-task");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        var overridden = run.Plan;
        Assert.That(overridden.Any(c => c.Is("gcloud", "storage", "buckets", "describe", "gs://my-project.appspot.com")), Is.False);
        Assert.That(overridden.Any(c => c.Is("gcloud", "firestore", "databases", "describe")), Is.False);
        Assert.That(overridden.Single(c => c.Is("gcloud", "functions", "deploy", $"ext-{Instance}-streamUpdateDatapoint")).Value("--trigger-location"),
            Is.EqualTo("us"));
        Assert.That(overridden.Single(c => c.Is("gcloud", "functions", "deploy", $"ext-{Instance}-createIndexTrigger")).Value("--trigger-location"),
            Is.EqualTo("nam5"));
        Assert.That(overridden.Any(c => c.Is("gcloud", "tasks", "create-http-task")), Is.False, "--no-install-task");
    }
}
