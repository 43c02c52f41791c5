using System.Globalization;
using System.Net;
using System.Net.Sockets;
using ReverseImageSearch.Emulator;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>
/// Every wrong argument ends the emulator process with one line naming the argument, the value and the rule,
/// exit code 2 and nothing started or created.
/// </summary>
[Parallelizable(ParallelScope.None)]
public class EmulatorCommandLineTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("ris-cli-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    [TestCase("serve", "--port", "99999", "--port='99999' must be a whole number from 1 to 65535")]
    [TestCase("serve", "--port", "0", "--port='0' must be a whole number from 1 to 65535")]
    [TestCase("serve", "--port", "http", "--port='http' must be a whole number from 1 to 65535")]
    [TestCase("serve", "--host", "example.com", "--host='example.com' must be an IP address such as 127.0.0.1, 0.0.0.0 or ::1, or localhost")]
    [TestCase("serve", "--allow-origin", "app.example", "--allow-origin='app.example' must be a web origin scheme://host[:port] (http or https, no path), such as https://app.example")]
    [TestCase("serve", "--allow-origin", "https://app.example/search", "--allow-origin='https://app.example/search' must be a web origin scheme://host[:port] (http or https, no path), such as https://app.example")]
    [TestCase("serve", "--allow-origin", "*", "--allow-origin='*' must be a web origin scheme://host[:port] (http or https, no path), such as https://app.example")]
    [TestCase("serve", "--allow-origin", "ftp://app.example", "--allow-origin='ftp://app.example' must be a web origin scheme://host[:port] (http or https, no path), such as https://app.example")]
    [TestCase("query", "--neighbors", "0", "--neighbors='0' must be a whole number from 1 to 1000")]
    [TestCase("query", "--neighbors", "-3", "--neighbors='-3' must be a whole number from 1 to 1000")]
    [TestCase("query", "--neighbors", "abc", "--neighbors='abc' must be a whole number from 1 to 1000")]
    [TestCase("query", "--format", "csv", "--format='csv' must be one of tsv, json")]
    [TestCase("query", "--path", "", "--path='' must be the name of a stored image: 1 to 1024 bytes")]
    [TestCase("query", "--folder", "ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé", "--folder='éé")]
    public async Task AWrongValueIsOneLineWithExitCodeTwo(string command, string option, string value, string line)
    {
        var data = Path.Combine(_root, "data");
        string[] arguments = command == "query" ? ["query", "--data", data, option, value, _root] : ["serve", "--data", data, option, value];
        var result = await EmulatorProcess.RunAsync(arguments);
        AssertUsageError(result, "Invalid argument: " + line);
        Assert.That(Directory.Exists(data), Is.False, "nothing is created");
    }

    [Test]
    public async Task ServeOfAMissingImagesFolderIsRefusedWithoutCreatingIt()
    {
        var missing = Path.Combine(_root, "Pictures");
        var result = await EmulatorProcess.RunAsync(["serve", "--images", missing, "--data", Path.Combine(_root, "data"), "--port", EmulatorProcess.FreePort().ToString(CultureInfo.InvariantCulture)]);
        AssertUsageError(result, $"Invalid argument: --images='{missing}' must be an existing folder ({missing} does not exist)");
        Assert.That(Directory.Exists(missing), Is.False);
        Assert.That(Directory.Exists(Path.Combine(_root, "data")), Is.False);
    }

    [Test]
    public async Task AQueryWithNeitherAnImageNorAStoredPathIsRefused()
    {
        var result = await EmulatorProcess.RunAsync(["query", "--data", _root, "--folder", "shop"]);
        AssertUsageError(result, "Invalid argument: PATH or --path is required: query images (files or folders), or stored images to search from");
    }

    [Test]
    public async Task AMissingQueryImageIsRefused()
    {
        var missing = Path.Combine(_root, "cat.jpg");
        var result = await EmulatorProcess.RunAsync(["query", "--data", _root, missing]);
        AssertUsageError(result, $"Invalid argument: PATH='{missing}' must be an existing image file or folder ({missing} does not exist)");
    }

    [Test]
    public async Task APortInUseIsRefusedNamingTheProcessThatHoldsIt()
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var port = ((IPEndPoint)holder.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);
        var data = Path.Combine(_root, "data");
        var result = await EmulatorProcess.RunAsync(["serve", "--data", data, "--port", port]);
        AssertUsageError(result, $"Invalid argument: --port='{port}' is in use by process {Environment.ProcessId} (");
        Assert.That(Directory.Exists(data), Is.False, "nothing is created");
    }

    [Test]
    public async Task ASecondServeOnTheSameDataFolderIsRefusedNamingTheFirst()
    {
        var data = Path.Combine(_root, "data");
        var port = EmulatorProcess.FreePort();
        using var first = EmulatorProcess.Start(["serve", "--data", data, "--port", port.ToString(CultureInfo.InvariantCulture)]);
        await EmulatorPorts.WaitForStatusAsync(first, port, TimeSpan.FromSeconds(90));

        var second = await EmulatorProcess.RunAsync(["serve", "--data", data, "--port", EmulatorProcess.FreePort().ToString(CultureInfo.InvariantCulture)]);
        AssertUsageError(second, $"Invalid argument: --data='{data}' is in use by process {first.Id} (");
        Assert.That(second.StandardError, Does.EndWith("one serve or index per data folder" + Environment.NewLine));

        var index = await EmulatorProcess.RunAsync(["index", "--images", Path.Combine(data, "sample-images"), "--data", data]);
        AssertUsageError(index, $"Invalid argument: --data='{data}' is in use by process {first.Id} (");
        Assert.That(first.HasExited, Is.False, "the first serve goes on");
    }

    [Test]
    public async Task RelativePathsThroughDotnetRunAreTheCallersFolder()
    {
        SampleImages.EnsureCreated(Path.Combine(_root, "photos"));
        using var index = EmulatorProcess.StartThroughDotnetRun(["index", "--images", "photos", "--data", "state"], workingDirectory: _root);
        await EmulatorProcess.WaitAsync(index);
        Assert.That(index.ExitCode, Is.Zero, index.Output);
        Assert.That(File.Exists(Path.Combine(_root, "state", "state.sqlite")), Is.True, "--data state is the caller's ./state");
    }

    private static void AssertUsageError(EmulatorProcess result, string lineStart)
    {
        Assert.Multiple(() =>
        {
            Assert.That(result.ExitCode, Is.EqualTo(2), result.Output);
            Assert.That(result.StandardOutput, Is.Empty, "nothing started");
            Assert.That(result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(1), result.StandardError);
            Assert.That(result.StandardError, Does.StartWith(lineStart));
            Assert.That(result.StandardError, Does.Not.Contain(" at "), "no stack trace");
        });
    }
}
