namespace ReverseImageSearch.Tests.Deploy;

/// <summary>
/// deploy.sh run for real (no --dry-run) against a stand-in gcloud and curl on PATH that record
/// their arguments and answer the lookups: the real path must run what the dry run promised, use the
/// looked-up locations and parse the metadata document.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // bash, file modes
public class FakeCloudRunTests
{
    private const string Instance = "reverse-image-search";
    private const char Separator = '\u001f';

    private TempDir _temp = null!;
    private string _log = null!;
    private Dictionary<string, string> _environment = null!;

    private const string FakeGcloud = """
        #!/bin/bash
        line=""
        for a in "$@"; do line+="$a"$'\x1f'; done
        printf 'gcloud\x1f%s\n' "$line" >> "$FAKE_LOG"
        case " $* " in
          *" storage buckets describe gs://my-project.appspot.com "*) echo US-CENTRAL1 ;;
          *" firestore databases describe "*) echo nam5 ;;
          *" storage service-agent "*) echo service-42@gs-project-accounts.iam.gserviceaccount.com ;;
          *" projects describe my-project "*) echo 42 ;;
          *" get-iam-policy "*) printf 'allServices,ADMIN_READ\naiplatform.googleapis.com,DATA_READ\n' ;;
          *" auth print-access-token "*) echo secret-token-123 ;;
          *" index-endpoints list "*) echo projects/42/locations/us-central1/indexEndpoints/999 ;;
          *" describe "*) echo "ERROR: (gcloud) NOT_FOUND: absent" >&2; exit 1 ;;
          *" functions delete ext-reverse-image-search-queryIndex "*) echo "ERROR: (gcloud.functions.delete) NOT_FOUND: Resource not found" >&2; exit 1 ;;
        esac
        exit 0
        """;

    // Firestore's REST API: the metadata document (-o, the status on stdout); a collection listing answers one page with
    // two documents, then none (they were deleted); batchWrite records its body.
    private const string FakeCurl = """
        #!/bin/bash
        out="" header="" url="" data=""
        while (($#)); do
          case $1 in
            -o|-w) [[ $1 == -o ]] && out=$2; shift 2 ;;
            -H) [[ $2 == Authorization:* || $2 == @- ]] && header=$2; shift 2 ;;
            -X) shift 2 ;;
            --data-binary) data=$2; shift 2 ;;
            -*) shift ;;
            *) url=$1; shift ;;
          esac
        done
        [[ $header == @- ]] && header=$(cat)
        printf 'curl\x1f%s\x1f%s\x1f%s\n' "$url" "$header" "$data" >> "$FAKE_LOG"
        case $url in
          *pageSize=*)
            collection=${url#*/documents/}; collection=${collection%%\?*}
            marker="$FAKE_LOG.${collection//\//_}"
            if [[ -e $marker ]]; then echo '{}'; exit 0; fi
            touch "$marker"
            base="projects/my-project/databases/(default)/documents/$collection"
            printf '{"documents": [{"name": "%s/a", "fields": {"name": {"stringValue": "x"}}}, {"name": "%s/b%%2Fc"}]}' "$base" "$base"
            ;;
          *batchWrite) echo '{}' ;;
          *)
            cat "$FAKE_METADATA" > "$out"
            printf '%s' "$FAKE_STATUS"
            ;;
        esac
        """;

    [SetUp]
    public void CreateFakeCloud()
    {
        _temp = new TempDir();
        _log = Path.Combine(_temp.Path, "calls.log");
        var bin = Directory.CreateDirectory(Path.Combine(_temp.Path, "bin")).FullName;
        foreach (var (name, text) in new[] { ("gcloud", FakeGcloud), ("curl", FakeCurl) })
        {
            var path = Path.Combine(bin, name);
            File.WriteAllText(path, text + "\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        _environment = new Dictionary<string, string>
        {
            ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH"),
            ["FAKE_LOG"] = _log,
            ["FAKE_METADATA"] = Path.Combine(_temp.Path, "metadata.json"),
            ["FAKE_STATUS"] = "200",
        };
    }

    [TearDown]
    public void Cleanup() => _temp.Dispose();

    private List<string[]> Calls() =>
        File.Exists(_log)
            ? File.ReadAllLines(_log).Select(l => l.TrimEnd(Separator).Split(Separator)).ToList()
            : [];

    [Test]
    public async Task InstallRunsThePlannedCommandsWithTheLookedUpLocations()
    {
        var dry = await DeployScript.RunAsync(_temp.Path, _environment, "--env-file", DeployScript.VertexSampleEnv(_temp.Path), "--dry-run");
        Assert.That(dry.ExitCode, Is.EqualTo(0), dry.ToString());
        Assert.That(Calls(), Is.Empty, "a dry run calls nothing");

        var real = await DeployScript.RunAsync(_temp.Path, _environment, "--env-file", DeployScript.VertexSampleEnv(_temp.Path));
        Assert.That(real.ExitCode, Is.EqualTo(0), real.ToString());

        static string Normalize(IEnumerable<string> words) => string.Join(' ', words.Select(w =>
            w.StartsWith("--env-vars-file=", StringComparison.Ordinal) ? "--env-vars-file=FILE" : w));
        var expected = dry.Plan.Select(c => Normalize(c.Words)
            .Replace("<img-bucket-location>", "us-central1", StringComparison.Ordinal)
            .Replace("<firestore-location>", "nam5", StringComparison.Ordinal)
            .Replace("<project-number>", "42", StringComparison.Ordinal)).ToList();
        var ran = Calls().Select(Normalize).ToList();
        Assert.That(ran, Is.EqualTo(expected), "the real run runs exactly the dry-run plan, in order");

        Assert.That(real.StandardError, Does.Contain("WARNING").And.Contain("DATA_WRITE").And.Contain("set-iam-policy"),
            "missing Data Write audit logs are warned about");
        Assert.That(real.StandardError, Does.Not.Contain("DATA_READ DATA_WRITE"), "DATA_READ is present");
        Assert.That(Directory.GetDirectories(_temp.Path, "ris-deploy.*"), Has.Length.EqualTo(1),
            "only the dry run's folder stays; the real run cleans up");
    }

    [TestCase("metadata-deployed", "200", new[] { "456", "999" }, "123")]
    [TestCase("metadata-building", "200", new[] { "999" }, "777")]
    [TestCase("none", "404", new[] { "999" }, null)]
    public async Task UninstallDeletesWhatTheMetadataNames(string body, string status, string[] endpoints, string? index)
    {
        var json = body switch
        {
            "metadata-deployed" => """
                {
                  "name": "projects/my-project/databases/(default)/documents/_ext-reverse-image-search/metadata",
                  "fields": {
                    "indexEndpoint": {
                      "stringValue": "projects/42/locations/us-central1/indexEndpoints/456"
                    },
                    "index": {
                      "stringValue": "projects/42/locations/us-central1/indexes/123"
                    }
                  }
                }
                """,
            "metadata-building" => """{"fields":{"operation":{"stringValue":"projects/42/locations/us-central1/indexes/777/operations/55"}}}""",
            _ => """{"error":{"code":404,"status":"NOT_FOUND"}}""",
        };
        File.WriteAllText(_environment["FAKE_METADATA"], json);
        _environment["FAKE_STATUS"] = status;

        var result = await DeployScript.RunAsync(_temp.Path, _environment, "uninstall", "--env-file", DeployScript.VertexSampleEnv(_temp.Path));
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        var calls = Calls();

        var curl = calls.First(c => c[0] == "curl");
        Assert.That(curl[1], Does.Contain($"/databases/(default)/documents/_ext-{Instance}/metadata?"));
        Assert.That(calls.Where(c => c[0] == "curl").Select(c => c[2]), Has.All.EqualTo("Authorization: Bearer secret-token-123"),
            "the token reaches curl on stdin");
        var prefix = $"projects/my-project/databases/(default)/documents/_ext-{Instance}";
        Assert.That(calls.Where(c => c[0] == "curl" && c[1].EndsWith(":batchWrite", StringComparison.Ordinal)).Select(c => c[3]), Is.EqualTo(new[]
        {
            $$"""{"writes":[{"delete":"{{prefix}}/metadata/datapoints/a"},{"delete":"{{prefix}}/metadata/datapoints/b%2Fc"}]}""",
            $$"""{"writes":[{"delete":"{{prefix}}/tasks/enqueues/a"},{"delete":"{{prefix}}/tasks/enqueues/b%2Fc"}]}""",
        }), "each record and chunk document, listed until none is left, deleted by its name");
        Assert.That(Targets("firestore", "bulk-delete"), Is.EqualTo(new[] { $"--collection-ids=_ext-{Instance}" }));
        Assert.That(calls.Where(c => c[0] == "gcloud").SelectMany(c => c), Has.None.Contains("secret-token-123"));
        Assert.That(result.StandardError, Does.Not.Contain("secret-token-123"), "the token is never logged");

        List<string> Targets(params string[] prefix) =>
            calls.Where(c => c.Skip(1).Take(prefix.Length).SequenceEqual(prefix)).Select(c => c[prefix.Length + 1]).ToList();
        Assert.That(Targets("ai", "index-endpoints", "undeploy-index"), Is.EqualTo(endpoints));
        Assert.That(Targets("ai", "index-endpoints", "delete"), Is.EqualTo(endpoints));
        Assert.That(Targets("ai", "indexes", "delete"), Is.EqualTo(index is null ? Array.Empty<string>() : [index]));
        Assert.That(Targets("functions", "delete"), Has.Count.EqualTo(9), "a function already gone does not stop the uninstall");
        Assert.That(Targets("tasks", "queues", "delete"), Has.Count.EqualTo(3));
        Assert.That(Targets("storage", "rm"), Is.Empty);
    }

    [Test]
    public async Task UninstallReportsFailedStepsAndExitsNonZero()
    {
        File.WriteAllText(_environment["FAKE_METADATA"], "{}");
        // A gcloud that fails every deletion for a reason other than "not found".
        var failing = FakeGcloud.Replace("esac\nexit 0", "  *\" delete \"*) echo \"ERROR: PERMISSION_DENIED\" >&2; exit 1 ;;\nesac\nexit 0", StringComparison.Ordinal);
        Assert.That(failing, Is.Not.EqualTo(FakeGcloud));
        File.WriteAllText(Path.Combine(_temp.Path, "bin", "gcloud"), failing + "\n");

        var result = await DeployScript.RunAsync(_temp.Path, _environment, "uninstall", "--env-file", DeployScript.VertexSampleEnv(_temp.Path));
        Assert.That(result.ExitCode, Is.EqualTo(1), result.ToString());
        Assert.That(result.StandardError, Does.Contain("Some steps failed").And.Contain("PERMISSION_DENIED"));
        Assert.That(Calls().Count(c => c.Length > 2 && c[1] == "functions" && c[2] == "delete"), Is.EqualTo(9),
            "a failed step does not stop the others");
    }
}
