using System.Text.Json;

namespace ReverseImageSearch.Tests.Deploy;

/// <summary>
/// The deploy build (Google's buildpack, which deploy.sh gives GOOGLE_BUILDABLE) must not fail on a warning that
/// appears with no code change (a new NuGet audit advisory, a new analyzer); the project's own builds keep
/// warnings as errors. The SDK is pinned by global.json with a roll-forward the installed SDK satisfies.
/// </summary>
public sealed class BuildSettingsTests
{
    [Test]
    public async Task WarningsAreErrorsInTheProjectsOwnBuilds()
    {
        Assert.That(await PropertyAsync("TreatWarningsAsErrors", buildable: null), Is.EqualTo("true"));
    }

    [Test]
    public async Task TheBuildpackBuildKeepsWarningsAsWarnings()
    {
        Assert.That(await PropertyAsync("TreatWarningsAsErrors", buildable: "functions/QueryIndex"), Is.Not.EqualTo("true"));
    }

    [Test]
    public async Task TheBuildpackBuildCarriesOnlyCloudRunsNativeFilesAndStaysFrameworkDependent()
    {
        var function = Path.Combine("functions", "QueryIndex", "QueryIndex.csproj");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(await PropertyAsync("RuntimeIdentifier", buildable: "functions/QueryIndex", function), Is.EqualTo("linux-x64"));
            Assert.That(await PropertyAsync("SelfContained", buildable: "functions/QueryIndex", function), Is.EqualTo("false"));
            Assert.That(await PropertyAsync("RuntimeIdentifier", buildable: "functions/QueryIndex"), Is.Empty,
                "a library stays platform-neutral (ONNX Runtime's package adds its Windows files to a library built for x64)");
            Assert.That(await PropertyAsync("RuntimeIdentifier", buildable: null, function), Is.Empty, "the project's own builds keep every platform's");
        }
    }

    [Test]
    public async Task GlobalJsonPinsDotnet10WithARollForwardTheInstalledSdkSatisfies()
    {
        var path = Path.Combine(TestPaths.RepoRoot, "global.json");
        Assert.That(File.Exists(path), Is.True, "global.json pins the SDK");
        using var json = JsonDocument.Parse(File.ReadAllText(path));
        var sdk = json.RootElement.GetProperty("sdk");
        Assert.Multiple(() =>
        {
            Assert.That(sdk.GetProperty("version").GetString(), Does.StartWith("10.0."));
            Assert.That(sdk.GetProperty("rollForward").GetString(), Is.EqualTo("latestFeature"));
            Assert.That(sdk.GetProperty("allowPrerelease").GetBoolean(), Is.False);
        });
        // dotnet resolves the SDK through global.json from the repository root: exit 0 means it is satisfied.
        var version = await ProcessRunner.RunAsync("dotnet", ["--version"], null, TimeSpan.FromMinutes(1), TestPaths.RepoRoot);
        Assert.That(version.ExitCode, Is.Zero, version.ToString());
        Assert.That(version.StandardOutput.Trim(), Does.StartWith("10.0."));
    }

    private static async Task<string> PropertyAsync(string name, string? buildable, string? project = null)
    {
        var env = new Dictionary<string, string> { ["GOOGLE_BUILDABLE"] = buildable ?? "" };
        project = Path.Combine(TestPaths.RepoRoot, project ?? Path.Combine("shared", "Core", "ReverseImageSearch.Core.csproj"));
        var result = await ProcessRunner.RunAsync(
            "dotnet", ["msbuild", project, "-nologo", $"-getProperty:{name}"], env, TimeSpan.FromMinutes(2), TestPaths.RepoRoot);
        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        return result.StandardOutput.Trim();
    }
}
