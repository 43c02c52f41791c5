namespace ReverseImageSearch.Tests.Deploy;

/// <summary>
/// Every parameter is checked before any command runs: the script is run for real (no --dry-run)
/// with a gcloud on PATH that records its calls, and a bad value must stop it first.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // bash, file modes
public class ParameterValidationTests
{
    private TempDir _temp = null!;
    private string _callLog = null!;
    private Dictionary<string, string> _environment = null!;

    [SetUp]
    public void CreateFakeCloud()
    {
        _temp = new TempDir();
        _callLog = Path.Combine(_temp.Path, "calls.log");
        var bin = Path.Combine(_temp.Path, "bin");
        Directory.CreateDirectory(bin);
        foreach (var tool in new[] { "gcloud", "curl" })
        {
            var path = Path.Combine(bin, tool);
            File.WriteAllText(path, $"#!/bin/sh\necho \"{tool} $*\" >> \"{_callLog}\"\nexit 0\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        _environment = new Dictionary<string, string> { ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH") };
    }

    [TearDown]
    public void Cleanup() => _temp.Dispose();

    private static IEnumerable<TestCaseData> BadValues()
    {
        (string Key, string? Value, string Rule)[] cases =
        [
            ("BATCH_SIZE", "65", "from 1 to 64"),
            ("BATCH_SIZE", "0", "from 1 to 64"),
            ("BATCH_SIZE", "3x", "whole number"),
            ("DISTANCE_MEASURE", "FOO", "must be one of"),
            ("IMG_PATH", "/a/", "folder path"),
            ("IMG_PATH", "a//b", "folder path"),
            ("LOCATION", "mars-1", "must be one of"),
            ("LOCATION", null, "is required"),
            ("IMG_BUCKET", null, "is required"),
            ("IMG_BUCKET", "My_Bucket", "bucket name"),
            ("PROJECT_ID", null, "is required"),
            ("PROJECT_ID", "Project", "project id"),
            ("EXT_INSTANCE_ID", "1abc", "lower-case"),
            ("EXT_INSTANCE_ID", "a-name-far-too-long-for-an-account", "at most 30"),
            ("DO_BACKFILL", "yes", "true or false"),
            ("MODEL_URL", "http://example.com/model.onnx", "https://"),
            ("MODEL_URL", "gs://bucket/model.onnx", "https://"),
            ("MODEL_FROM_TF_HUB", "true", "not supported"),
            ("INPUT_SHAPE", "224", "two whole numbers"),
            ("INPUT_SHAPE", "224,8", "between 16 and 4096"),
            ("ALGORITHM_CONFIG", "annConfig", "must be one of"),
            ("N_COUNT", "-1", "whole number"),
            ("SHARD_SIZE", "SHARD_SIZE_HUGE", "must be one of"),
            ("MACHINE_TYPE", "e2-micro", "must be one of"),
            ("ACCELERATOR_TYPE", "NVIDIA_H100", "must be one of"),
            ("ACCELERATOR_COUNT", "17", "from 1 to 16"),
            ("MIN_REPLICA_COUNT", "0", "from 1 to 1000"),
            ("MAX_REPLICA_COUNT", "1001", "from 1 to 1000"),
            ("MAX_QUERY_IMAGES", "257", "from 1 to 256"),
            ("BACKFILL_MAX_ATTEMPTS", "0", "from 1 to 1000"),
            ("PENDING_WRITE_RETRY_SECONDS", "86401", "from 1 to 86400"),
            ("MODEL_PRECISION", "int4", "must be one of"),
            ("FIRESTORE_LOCATION", "nam 5", "location"),
        ];
        foreach (var (key, value, rule) in cases)
        {
            yield return new TestCaseData(key, value, rule).SetArgDisplayNames(key, value ?? "(missing)");
        }
    }

    [TestCaseSource(nameof(BadValues))]
    public async Task ABadParameterStopsBeforeAnyCommand(string key, string? value, string rule)
    {
        var env = _temp.Write("bad.env", DeployScript.SampleWith(new Dictionary<string, string?> { [key] = value }));
        var result = await DeployScript.RunAsync(_temp.Path, _environment, "--env-file", env);

        Assert.That(result.ExitCode, Is.EqualTo(2), result.ToString());
        Assert.That(File.Exists(_callLog), Is.False, "no command may run before the parameters are valid");
        Assert.That(result.StandardOutput, Is.Empty);
        var lines = result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), "one line");
        Assert.That(lines[0], Does.Contain(key + "=" + (value is null ? "(unset)" : $"'{value}'")));
        Assert.That(lines[0], Does.Contain(rule));
    }

    [Test]
    public async Task MaxReplicasBelowMinReplicasIsRejected()
    {
        var env = _temp.Write("bad.env", DeployScript.SampleWith(new Dictionary<string, string?>
        {
            ["MIN_REPLICA_COUNT"] = "3",
            ["MAX_REPLICA_COUNT"] = "2",
        }));
        var result = await DeployScript.RunAsync(_temp.Path, _environment, "--env-file", env);
        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.StandardError, Does.Contain("MAX_REPLICA_COUNT='2'").And.Contain("MIN_REPLICA_COUNT (3)"));
        Assert.That(File.Exists(_callLog), Is.False);
    }

    [Test]
    public async Task Int8PrecisionWithAModelUrlIsRejected()
    {
        var env = _temp.Write("bad.env", DeployScript.SampleWith(new Dictionary<string, string?>
        {
            ["MODEL_URL"] = "https://example.com/model.onnx",
            ["MODEL_PRECISION"] = "int8",
        }));
        var result = await DeployScript.RunAsync(_temp.Path, _environment, "--env-file", env);
        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.StandardError, Does.Contain("MODEL_PRECISION='int8'").And.Contain("MODEL_URL must be empty"));
        Assert.That(File.Exists(_callLog), Is.False);
    }

    [TestCase("IMG_BUKET=typo\n", "unknown key IMG_BUKET")]
    [TestCase("this is not a pair\n", "expected KEY=VALUE")]
    [TestCase("BATCH_SIZE=8\n", "BATCH_SIZE is set twice")]
    public async Task AMalformedEnvFileStopsBeforeAnyCommand(string extraLine, string message)
    {
        var env = _temp.Write("bad.env", DeployScript.SampleEnvText + extraLine);
        var result = await DeployScript.RunAsync(_temp.Path, _environment, "--env-file", env);
        Assert.That(result.ExitCode, Is.EqualTo(2), result.ToString());
        Assert.That(result.StandardError, Does.Contain(message));
        Assert.That(File.Exists(_callLog), Is.False);
    }

    [Test]
    public async Task TheEnvFileIsReadAsDataNeverExecuted()
    {
        var marker = Path.Combine(_temp.Path, "pwned");
        var env = _temp.Write("evil.env", DeployScript.SampleWith(new Dictionary<string, string?>
        {
            ["MODEL_URL"] = $"https://example.com/$(touch${{IFS}}{marker})",
        }));
        var result = await DeployScript.RunAsync(_temp.Path, null, "--env-file", env, "--dry-run");
        Assert.That(File.Exists(marker), Is.False);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        var file = result.Plan.First(c => c.Is("gcloud", "functions", "deploy")).Value("--env-vars-file")!;
        Assert.That(File.ReadAllText(file), Does.Contain($"MODEL_URL: 'https://example.com/$(touch${{IFS}}{marker})'"));
    }

    [Test]
    public async Task DefaultsFillOptionalParameters()
    {
        var minimal = _temp.Write("minimal.env", "PROJECT_ID=my-project\nEXT_INSTANCE_ID=ris\nLOCATION=europe-west1\nIMG_BUCKET=photos\n");
        var result = await DeployScript.RunAsync(_temp.Path, null, "--env-file", minimal, "--dry-run");
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        var file = result.Plan.First(c => c.Is("gcloud", "functions", "deploy")).Value("--env-vars-file")!;
        var text = File.ReadAllText(file);
        string[] expected =
        [
            "IMG_PATH: ''", "DO_BACKFILL: 'true'", "MODEL_URL: ''", "MODEL_FROM_TF_HUB: 'false'", "INPUT_SHAPE: '224,224'",
            "DISTANCE_MEASURE: 'DOT_PRODUCT_DISTANCE'", "ALGORITHM_CONFIG: 'bruteForceConfig'", "N_COUNT: '100'", "BATCH_SIZE: '32'",
            "SHARD_SIZE: 'SHARD_SIZE_SMALL'", "MACHINE_TYPE: 'e2-standard-2'", "ACCELERATOR_TYPE: 'ACCELERATOR_TYPE_UNSPECIFIED'",
            "ACCELERATOR_COUNT: '1'", "MIN_REPLICA_COUNT: '1'", "MAX_REPLICA_COUNT: '1'", "LOCATION: 'europe-west1'",
        ];
        foreach (var line in expected)
        {
            Assert.That(text, Does.Contain(line + "\n"));
        }
    }

    [Test]
    public async Task HelpExplainsTheUsage()
    {
        var result = await DeployScript.RunAsync(_temp.Path, null, "--help");
        Assert.That(result.ExitCode, Is.EqualTo(0));
        Assert.That(result.StandardOutput, Does.Contain("--env-file FILE").And.Contain("uninstall").And.Contain("--dry-run").And.Contain("--delete-data"));
    }
}
