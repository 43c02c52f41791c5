using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace ReverseImageSearch.Benchmarks;

internal static class BenchConfig
{
    /// <summary>
    /// Short runs (a case costs from milliseconds to a second per operation on 2 cores), in process (no second
    /// build of every project: the machine's disk and time are small), JSON export for the report.
    /// RIS_BENCH_QUICK=1 makes it a smoke run: one iteration, no warm-up.
    /// </summary>
    public static IConfig Create() => DefaultConfig.Instance
        .AddJob((Environment.GetEnvironmentVariable("RIS_BENCH_QUICK") == "1"
                ? Job.Dry
                : Job.Default.WithWarmupCount(1).WithIterationCount(5).WithLaunchCount(1))
            .WithToolchain(InProcessEmitToolchain.Instance).WithId("Short"))
        .AddExporter(JsonExporter.Full)
        .AddDiagnoser(MemoryDiagnoser.Default)
        .AddColumn(StatisticColumn.Median)
        .WithOptions(ConfigOptions.JoinSummary | ConfigOptions.DisableLogFile);
}
