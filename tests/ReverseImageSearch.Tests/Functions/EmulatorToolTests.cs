using System.Diagnostics;
using ReverseImageSearch.Emulator;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>
/// The one-line install: <c>dotnet pack</c> makes a .NET tool package with the model inside; installed into
/// a tool path it runs from any folder, relative paths being that folder's.
/// </summary>
[Parallelizable(ParallelScope.None)]
public class EmulatorToolTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("ris-tool-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    [Test]
    public async Task ThePackedToolInstallsAndIndexesAndQueriesFromAnyFolder()
    {
        var packages = Path.Combine(_root, "packages");
        var pack = await RunAsync("dotnet", ["pack", Path.Combine(TestPaths.RepoRoot, "emulator"), "-c", EmulatorProcess.Configuration, "--no-build", "-nologo", "-o", packages], _root);
        Assert.That(pack.ExitCode, Is.Zero, pack.Output);
        var package = Directory.GetFiles(packages, "ReverseImageSearch.Emulator.*.nupkg").Single();
        using (var zip = System.IO.Compression.ZipFile.OpenRead(package))
        {
            Assert.That(zip.Entries.Select(e => e.FullName), Does.Contain("tools/net10.0/any/models/mobilenet_v2/model.onnx"), "the model is inside");
        }

        // Only the packed folder as source, and a package cache of its own: nothing else can be installed.
        var config = Path.Combine(_root, "nuget.config");
        await File.WriteAllTextAsync(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration><packageSources><clear /><add key="packed" value="{packages}" /></packageSources></configuration>
            """);
        var tools = Path.Combine(_root, "tools");
        var environment = new Dictionary<string, string> { ["NUGET_PACKAGES"] = Path.Combine(_root, "nuget-cache") };
        var install = await RunAsync("dotnet", ["tool", "install", "--tool-path", tools, "--configfile", config, "ReverseImageSearch.Emulator"], _root, environment);
        Assert.That(install.ExitCode, Is.Zero, install.Output);

        var tool = Path.Combine(tools, "ris-emulator");
        var help = await RunAsync(tool, ["--help"], _root);
        Assert.That(help.ExitCode, Is.Zero, help.Output);
        Assert.That(help.StandardOutput, Does.Contain("serve").And.Contain("index").And.Contain("query"));

        // From a folder of the user's, with relative paths.
        var home = Directory.CreateDirectory(Path.Combine(_root, "home")).FullName;
        SampleImages.EnsureCreated(Path.Combine(home, "Pictures"));
        var index = await RunAsync(tool, ["index", "--images", "Pictures", "--data", "search-data"], home);
        Assert.That(index.ExitCode, Is.Zero, index.Output);
        Assert.That(index.StandardOutput, Does.Contain($"Images: {Directory.GetFiles(Path.Combine(home, "Pictures")).Length} indexed, 0 skipped, 0 failed."));
        Assert.That(File.Exists(Path.Combine(home, "search-data", "state.sqlite")), Is.True, "--data is relative to the folder the tool runs in");

        var query = await RunAsync(tool, ["query", "--data", "search-data", "--neighbors", "1", "Pictures/circle-blue.jpg"], home);
        Assert.That(query.ExitCode, Is.Zero, query.Output);
        Assert.That(query.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)[1], Is.EqualTo("Pictures/circle-blue.jpg\t1\tcircle-blue.jpg\t1.000000"));
    }

    private static async Task<EmulatorProcess> RunAsync(string program, string[] arguments, string workingDirectory, IReadOnlyDictionary<string, string>? environment = null)
    {
        var watch = Stopwatch.StartNew();
        var process = await EmulatorProcess.WaitAsync(EmulatorProcess.Start(program, arguments, environment, workingDirectory), TimeSpan.FromMinutes(5));
        TestContext.Out.WriteLine($"{Path.GetFileName(program)} {string.Join(' ', arguments)}: exit {process.ExitCode} after {watch.Elapsed.TotalSeconds:F1} s");
        return process;
    }
}
