using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using ReverseImageSearch.Emulator;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>
/// Ctrl+C and SIGTERM stop <c>serve</c> cleanly within seconds, also in the middle of a backfill: started as
/// the README says (<c>dotnet run</c>, whose process group a terminal signals as a whole) and directly.
/// </summary>
[Parallelizable(ParallelScope.None)]
public class EmulatorShutdownTests
{
    // The emulator ends itself 10 s after the first signal when stopping takes longer; a clean stop is well inside.
    private static readonly TimeSpan StopLimit = TimeSpan.FromSeconds(8);

    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("ris-shutdown-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    [TestCase("INT", true, TestName = "CtrlCToTheDotnetRunProcessGroupStopsServeCleanlyMidBackfill")]
    [TestCase("TERM", false, TestName = "SigtermToServeStartedDirectlyStopsItCleanlyMidBackfill")]
    public async Task ASignalStopsServeCleanlyAndTheNextRunFinishesTheWork(string signal, bool throughDotnetRun)
    {
        var images = ManyImages(Path.Combine(_root, "photos"), copies: 6);
        var data = Path.Combine(_root, "data");
        var port = EmulatorProcess.FreePort();
        string[] arguments = ["serve", "--images", images, "--data", data, "--port", port.ToString(CultureInfo.InvariantCulture)];
        using var serve = throughDotnetRun ? EmulatorProcess.StartThroughDotnetRun(arguments) : EmulatorProcess.Start(arguments);

        // Signal as soon as it answers: the backfill of the images is then in flight.
        var status = await EmulatorPorts.WaitForStatusAsync(serve, port, TimeSpan.FromSeconds(90));
        TestContext.Out.WriteLine("status when signalled: " + status);
        if (throughDotnetRun)
        {
            ProcessGroup.Signal(serve.Id, signal);
        }
        else
        {
            ProcessGroup.SignalProcess(serve.Id, signal);
        }

        // Through dotnet run, every process of the group must end: dotnet run and the emulator it started.
        var stoppedAfter = throughDotnetRun ? await ProcessGroup.WaitUntilGoneAsync(serve.Id, StopLimit) : await WaitForExitAsync(serve, StopLimit);
        Assert.That(stoppedAfter, Is.Not.Null, () => $"still running {StopLimit.TotalSeconds} s after SIG{signal}: {string.Join("; ", ProcessGroup.Members(serve.Id))}\n{serve.Output}");
        TestContext.Out.WriteLine($"stopped {stoppedAfter!.Value.TotalSeconds:F1} s after SIG{signal}");
        await EmulatorProcess.WaitAsync(serve);
        Assert.That(serve.StandardOutput, Does.Contain("Stopped."), serve.Output);
        Assert.That(serve.ExitCode, Is.Zero, serve.Output);

        // The SQLite file was closed cleanly (its write-ahead log checkpointed and removed) and is intact.
        var database = Path.Combine(data, "state.sqlite");
        Assert.That(File.Exists(database + "-wal"), Is.False, "the write-ahead log is left behind: the database was not closed");
        await using (var connection = new SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False"))
        {
            await connection.OpenAsync();
            await using var check = connection.CreateCommand();
            check.CommandText = "PRAGMA integrity_check;";
            Assert.That(await check.ExecuteScalarAsync(), Is.EqualTo("ok"));
        }

        // What was in flight was given back: the next run finishes the index with every image.
        var index = await EmulatorProcess.RunAsync(["index", "--images", images, "--data", data]);
        Assert.That(index.ExitCode, Is.Zero, index.Output);
        var query = await EmulatorProcess.RunAsync(["query", "--data", data, "--neighbors", "1", images]);
        Assert.That(query.ExitCode, Is.Zero, query.Output);
        var found = query.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(line => line.Split('\t')).ToArray();
        Assert.That(found.Select(columns => columns[0]), Is.EquivalentTo(Directory.GetFiles(images).Select(Path.GetFileName)));
        // The copies of one sample are the same picture: any of them may come first.
        Assert.That(found.Where(columns => Sample(columns[2]) != Sample(columns[0])).Select(columns => columns[0]), Is.Empty, "an unmodified image's nearest neighbour is a copy of it");
    }

    [Test]
    public async Task ServeStoppedBeforeItAnswersStillStopsCleanly()
    {
        var port = EmulatorProcess.FreePort();
        using var serve = EmulatorProcess.Start(["serve", "--data", Path.Combine(_root, "data"), "--port", port.ToString(CultureInfo.InvariantCulture)]);
        var watch = Stopwatch.StartNew();
        while (!serve.Output.Contains("Loaded embedding model", StringComparison.Ordinal) && watch.Elapsed < TimeSpan.FromSeconds(60))
        {
            Assert.That(serve.HasExited, Is.False, serve.Output);
            await Task.Delay(20);
        }

        ProcessGroup.SignalProcess(serve.Id, "INT");
        var stoppedAfter = await WaitForExitAsync(serve, StopLimit);
        Assert.That(stoppedAfter, Is.Not.Null, () => "still running after SIGINT during start-up: " + serve.Output);
        Assert.That(serve.Output, Does.Not.Contain("Exception"), serve.Output);
    }

    /// <summary>The sample set, copied under several names: enough images for a backfill that lasts a few seconds.</summary>
    internal static string ManyImages(string folder, int copies)
    {
        var samples = SampleImages.EnsureCreated(folder + "-samples");
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(samples))
        {
            for (var copy = 0; copy < copies; copy++)
            {
                File.Copy(file, Path.Combine(folder, $"{copy}-{Path.GetFileName(file)}"));
            }
        }

        return folder;
    }

    private static string Sample(string copyName) => copyName.Split('-', 2)[1];

    private static async Task<TimeSpan?> WaitForExitAsync(EmulatorProcess process, TimeSpan limit)
    {
        var watch = Stopwatch.StartNew();
        while (!process.HasExited && watch.Elapsed < limit)
        {
            await Task.Delay(50);
        }

        return process.HasExited ? watch.Elapsed : null;
    }
}

/// <summary>Waiting for a serve to answer.</summary>
internal static class EmulatorPorts
{
    /// <summary>The first /api/status answer of the serve on <paramref name="port"/>.</summary>
    public static async Task<JsonElement> WaitForStatusAsync(EmulatorProcess serve, int port, TimeSpan limit)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < limit)
        {
            Assert.That(serve.HasExited, Is.False, () => "serve exited early: " + serve.Output);
            try
            {
                return await http.GetFromJsonAsync<JsonElement>("/api/status");
            }
            catch (HttpRequestException)
            {
                await Task.Delay(100);
            }
        }

        Assert.Fail($"serve did not answer within {limit.TotalSeconds} s: {serve.Output}");
        return default;
    }
}
