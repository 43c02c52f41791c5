using System.Diagnostics;

namespace ReverseImageSearch.Tests.Faults;

/// <summary>A real <c>index</c> process killed with SIGKILL, then started again on the same folders.</summary>
[Parallelizable(ParallelScope.None)]
public sealed class CrashRecoveryTests
{
    private static readonly TimeSpan RestartBound = TimeSpan.FromSeconds(150);

    [Test]
    public async Task IndexKilledWhileChunksAreLeasedFinishesWhenStartedAgain()
    {
        using var bed = new FaultBed();
        bed.WriteImages(120);
        using (var first = bed.StartIndex())
        {
            await WaitUntilAsync(() => bed.LeasedTasks("backfillTask") > 0 || first.HasExited, TimeSpan.FromSeconds(120));
            Assert.That(first.HasExited, Is.False, () => "the first run ended before it could be killed: " + first.Output);
            first.Kill();
        }

        Assert.That(bed.LeasedTasks(), Is.GreaterThan(0), "the kill left tasks leased by the dead process");
        var restarted = await bed.RunIndexAsync(RestartBound);
        Assert.That(restarted, Is.Not.Null, $"the restarted index did not finish within {RestartBound}");
        Assert.That(restarted!.Value.Process.ExitCode, Is.Zero, restarted.Value.Process.Output);
        TestContext.Out.WriteLine($"restart finished in {restarted.Value.Took.TotalSeconds:F1} s");
        restarted.Value.Process.Dispose();

        var outcome = await bed.ReadOutcomeAsync();
        Assert.That(outcome.IndexStatus, Is.EqualTo("INDEX_DEPLOYED"));
        Assert.That(outcome.ProcessedLength, Is.EqualTo(120));
        Assert.That(outcome.TotalLength, Is.EqualTo(120));
        Assert.That(outcome.IndexedIds.Order(StringComparer.Ordinal), Is.EqualTo(bed.ImageNames()));
    }

    [TestCase("query")]
    [TestCase("index")]
    public async Task ADamagedStateFileStopsTheCommandWithOneLineNamingItAndTheCause(string command)
    {
        using var bed = new FaultBed();
        bed.WriteImages(2);
        Directory.CreateDirectory(bed.Data);
        await File.WriteAllBytesAsync(bed.StateFile, Enumerable.Repeat((byte)0x5A, 8192).ToArray()); // Not SQLite any more.
        string[] arguments = command == "query"
            ? ["query", "--data", bed.Data, bed.Images]
            : ["index", "--images", bed.Images, "--data", bed.Data];

        using var result = await ReverseImageSearch.Tests.Functions.EmulatorProcess.RunAsync(arguments, timeout: TimeSpan.FromMinutes(2));

        Assert.That(result.ExitCode, Is.EqualTo(1), result.Output);
        var lines = result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), result.Output);
        Assert.That(lines[0], Does.Contain(bed.StateFile).And.Contain("not a database"));
        Assert.That(result.Output, Does.Not.Contain("   at "), "no stack trace");
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition() && clock.Elapsed < timeout)
        {
            await Task.Delay(20);
        }
    }
}
