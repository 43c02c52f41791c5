using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace ReverseImageSearch.Tests.Deploy;

/// <summary>
/// Every command of the dry-run plans goes through the real gcloud with an empty configuration (no
/// account, no project, prompts off). gcloud parses and checks the arguments before it needs
/// credentials, so each command must fail for lack of an account only: an unknown command, flag,
/// choice or malformed value fails the test. Other commands (curl) are checked for shell syntax.
/// </summary>
[NonParallelizable]
public partial class GcloudAcceptanceTests
{
    /// <summary>What gcloud says when it got as far as needing credentials.</summary>
    [GeneratedRegex(@"You do not currently have an active account selected|gcloud auth login|credentials|Reauthentication")]
    private static partial Regex NeedsCredentials();

    /// <summary>What gcloud says about bad usage.</summary>
    [GeneratedRegex(@"unrecognized arguments|Invalid value for|argument [^ ]+: |expected one argument|is not a valid|Invalid choice|Bad value|Bad syntax|Failed to parse|Failed to load|Unable to read|must be specified|is required|cannot be specified|not allowed|usage:",
        RegexOptions.IgnoreCase)]
    private static partial Regex BadUsage();

    [Test]
    public async Task EveryPlannedCommandIsAcceptedByTheRealGcloud()
    {
        var gcloud = ProcessRunner.Find("gcloud");
        if (gcloud is null)
        {
            Assert.Ignore("gcloud (Google Cloud SDK) is not installed: the plans cannot be checked against it.");
        }

        using var temp = new TempDir();
        var plans = new List<PlannedCommand>();
        var vertex = DeployScript.VertexSampleEnv(temp.Path);
        foreach (var args in new[]
        {
            // deploy/sample.env installs Firestore vector search; the copy with INDEX_BACKEND=vertex, Vertex AI.
            new[] { "--env-file", DeployScript.SampleEnv, "--dry-run" },
            ["uninstall", "--env-file", DeployScript.SampleEnv, "--dry-run", "--delete-data"],
            ["--env-file", vertex, "--dry-run"],
            ["uninstall", "--env-file", vertex, "--dry-run", "--delete-data"],
        })
        {
            var run = await DeployScript.RunAsync(temp.Path, null, args);
            Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
            plans.AddRange(run.Plan);
        }

        var config = Directory.CreateDirectory(Path.Combine(temp.Path, "gcloud-config")).FullName;
        var environment = new Dictionary<string, string>
        {
            ["CLOUDSDK_CONFIG"] = config,
            ["CLOUDSDK_CORE_DISABLE_PROMPTS"] = "1",
            // No waiting for a metadata server or an update check: answers in seconds offline.
            ["CLOUDSDK_CORE_CHECK_GCE_METADATA"] = "false",
            ["CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK"] = "1",
            ["CLOUDSDK_CORE_DISABLE_USAGE_REPORTING"] = "1",
            ["GOOGLE_APPLICATION_CREDENTIALS"] = Path.Combine(temp.Path, "none.json"),
        };

        var problems = new ConcurrentBag<string>();
        var clock = Stopwatch.StartNew();
        using var gate = new SemaphoreSlim(Math.Max(4, Environment.ProcessorCount * 3));
        await Task.WhenAll(plans.Select(async command =>
        {
            await gate.WaitAsync();
            try
            {
                // bash reads the printed line back: this also proves the quoting is right.
                if (!command.IsGcloud)
                {
                    var syntax = await ProcessRunner.RunAsync("bash", ["-n", "-c", command.Line], null, TimeSpan.FromSeconds(30));
                    if (syntax.ExitCode != 0)
                    {
                        problems.Add($"{command.Line}\n  shell syntax: {syntax.StandardError}");
                    }

                    return;
                }

                var result = await ProcessRunner.RunAsync("bash", ["-c", command.Line], environment, TimeSpan.FromSeconds(180), temp.Path);
                var error = result.StandardError;
                if (result.ExitCode == 0)
                {
                    problems.Add($"{command.Line}\n  succeeded without credentials?\n{result.StandardOutput}");
                }
                else if (BadUsage().IsMatch(error) || !NeedsCredentials().IsMatch(error))
                {
                    problems.Add($"{command.Line}\n  exit {result.ExitCode}: {error.Trim()}");
                }
            }
            finally
            {
                gate.Release();
            }
        }));

        TestContext.Out.WriteLine($"{plans.Count} planned commands ({plans.Count(c => c.IsGcloud)} gcloud) checked in {clock.Elapsed.TotalSeconds:F0} s");
        Assert.That(problems, Is.Empty, string.Join("\n\n", problems));
    }
}
