using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.InteropServices;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.VectorIndex;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// Single-query search throughput and the memory the vectors take, over the same raw vectors the FAISS anchor reads:
/// --mode float32 (InProcessVectorIndex scanning every float32 row), exact (the index's default: int8-filtered, the
/// same answers as float32; reports the float32 rows it scored per query) or quantized (QuantizedVectorSearch,
/// approximate). Threads are whatever the process may use: run under `taskset -c 0` for one. Float32 mode writes
/// the true top 10 of each query; the others read it for recall@10.
/// </summary>
internal static class IndexSearchMeasurement
{
    private const int K = 10;

    public static Task<int> RunAsync(Cli cli)
    {
        var count = cli.Int("count", 10_000);
        var dimensions = cli.Int("dims", 1280);
        var queryCount = cli.Int("queries", 200);
        var mode = cli.Get("mode", "exact");
        if (mode is not ("float32" or "exact" or "quantized"))
        {
            Console.Error.WriteLine($"--mode must be float32, exact or quantized, not '{mode}'");
            return Task.FromResult(2);
        }

        var seconds = cli.Double("seconds", 3);
        var truthPath = cli.Require("truth");

        GC.Collect();
        var before = ProcessMemory.Read("VmRSS");
        Func<float[], IReadOnlyList<VectorMatch>> search;
        InProcessVectorIndex? index = null;
        long structureBytes;
        const int Chunk = 4096;
        float[][] queries;
        if (mode != "quantized")
        {
            index = new InProcessVectorIndex(
                dimensions, DistanceMeasure.DotProduct, searchMode: mode == "exact" ? VectorSearchMode.Exact : VectorSearchMode.Float32Scan);
            var pending = new List<IndexDatapoint>(Chunk);
            queries = SyntheticVectors.Generate(count, dimensions, queryCount, (i, row) =>
            {
                pending.Add(new IndexDatapoint($"{i}", row.ToArray()));
                if (pending.Count == Chunk || i == count - 1)
                {
                    index.Upsert(pending);
                    pending.Clear();
                }
            });
            search = query => index.Search(query, K);
            structureBytes = index.VectorBytes;
        }
        else
        {
            var quantized = new QuantizedVectorSearch(dimensions, count);
            queries = SyntheticVectors.Generate(count, dimensions, queryCount, (i, row) => quantized.Add($"{i}", row));
            search = query => quantized.Search(query, K, cli.Int("candidates", 0));
            structureBytes = quantized.VectorBytes;
        }

        // Give back what building left behind (grown-and-copied arrays) before reading the resident size.
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        var after = ProcessMemory.Read("VmRSS");

        // Warm up, then time single queries round-robin until the time is up (at least one pass over 20 queries).
        var results = new IReadOnlyList<VectorMatch>[queryCount];
        // Warm-up by time: tiered compilation promotes the scan loop only after it has run a while.
        var warmUp = Stopwatch.StartNew();
        for (var q = 0; warmUp.Elapsed.TotalSeconds < cli.Double("warmup", 1) || q < 5; q++)
        {
            search(queries[q % queryCount]);
        }

        var latencies = new List<double>();
        // The exact search's own metric (Telemetry.IndexRowsScored): one value per timed query, recorded on this thread.
        var (filteredQueries, filteredRows) = (0L, 0L);
        using var rowsScoredListener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument, Telemetry.IndexRowsScored))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        rowsScoredListener.SetMeasurementEventCallback<long>((_, value, _, _) => (filteredQueries, filteredRows) = (filteredQueries + 1, filteredRows + value));
        rowsScoredListener.Start();
        var total = Stopwatch.StartNew();
        var i = 0;
        while ((total.Elapsed.TotalSeconds < seconds || i < 20) && i < 100_000)
        {
            var q = i % queryCount;
            var start = Stopwatch.GetTimestamp();
            results[q] = search(queries[q]);
            latencies.Add(Timing.Ms(Stopwatch.GetTimestamp() - start));
            i++;
        }

        var elapsed = total.Elapsed.TotalSeconds;
        rowsScoredListener.Dispose();
        double? rowsScored = mode == "exact" ? Math.Round(filteredRows / (double)Math.Max(1, filteredQueries), 1) : null;
        for (var q = 0; q < queryCount; q++)
        {
            results[q] ??= search(queries[q]);
        }

        double? recall = null;
        if (mode == "float32")
        {
            var truth = results.SelectMany(r => r.Select(m => int.Parse(m.Id, System.Globalization.CultureInfo.InvariantCulture))).ToArray();
            File.WriteAllBytes(truthPath, MemoryMarshal.AsBytes(truth.AsSpan()).ToArray());
        }
        else if (File.Exists(truthPath))
        {
            var truth = MemoryMarshal.Cast<byte, int>(File.ReadAllBytes(truthPath)).ToArray();
            var hits = 0;
            for (var q = 0; q < queryCount; q++)
            {
                var expected = truth.AsSpan(q * K, K).ToArray().ToHashSet();
                hits += results[q].Count(m => expected.Contains(int.Parse(m.Id, System.Globalization.CultureInfo.InvariantCulture)));
            }

            recall = hits / (double)(queryCount * K);
        }

        latencies.Sort();
        GC.KeepAlive(index);
        cli.Emit(new
        {
            engine = mode switch { "float32" => "dotnet-float32-scan", "exact" => "dotnet-exact-int8-filtered", _ => "dotnet-int8-rescored" },
            count,
            dimensions,
            threads = Environment.ProcessorCount,
            vnni = System.Runtime.Intrinsics.X86.AvxVnni.IsSupported, // the int8 scans use it where the CPU has it
            queries = i,
            qps = Math.Round(i / elapsed, 1),
            p50Ms = Math.Round(Timing.Percentile(latencies, 50), 3),
            p99Ms = Math.Round(Timing.Percentile(latencies, 99), 3),
            rssDeltaMiB = ProcessMemory.Mib(after - before),
            rssMiB = ProcessMemory.Mib(after),
            vectorBytesMiB = ProcessMemory.Mib(structureBytes),
            rawFloat32MiB = ProcessMemory.Mib((long)count * dimensions * sizeof(float)),
            recallAt10 = recall,
            // Exact mode: float32 rows scored per query after the int8 filter (the float32 scan scores all of them).
            rowsScoredPerQuery = rowsScored,
        });
        return Task.FromResult(0);
    }
}
