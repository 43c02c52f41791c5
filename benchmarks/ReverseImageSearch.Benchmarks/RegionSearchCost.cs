using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Numerics.Tensors;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.VectorIndex;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// What region vectors cost the local exact search (issue 12, item 2): one index of --count images with one vector
/// each, and one with --per-image vectors per image (the global vector, plus region vectors made from it with noise so
/// that they sit at a cosine of about 0.85 to it, as measured region vectors do), searched in alternating blocks of
/// --seconds each so that load from other processes hits both. The region index is asked for k x per-image rows,
/// which holds k distinct images once deduplicated (what an index without a crowding option has to do).
/// With --product: the product's own search (MATCH_CROPS, <see cref="RunProduct"/>).
/// </summary>
internal static class RegionSearchCost
{
    private const int K = 10;

    public static Task<int> RunAsync(Cli cli)
    {
        if (cli.Flag("product"))
        {
            return Task.FromResult(RunProduct(cli));
        }

        var count = cli.Int("count", 100_000);
        var perImage = cli.Int("per-image", 5);
        var dimensions = cli.Int("dims", 1280);
        var blocks = cli.Int("blocks", 6);
        var seconds = cli.Double("seconds", 2);
        var noise = (float)cli.Double("noise", 0.03);
        using var single = new InProcessVectorIndex(dimensions, DistanceMeasure.DotProduct, searchMode: VectorSearchMode.Exact);
        using var regions = new InProcessVectorIndex(dimensions, DistanceMeasure.DotProduct, searchMode: VectorSearchMode.Exact);
        var random = new XorShift(777);
        var pendingSingle = new List<IndexDatapoint>();
        var pendingRegions = new List<IndexDatapoint>();
        var cosines = 0.0;
        var queries = SyntheticVectors.Generate(count, dimensions, cli.Int("queries", 200), (i, row) =>
        {
            pendingSingle.Add(new IndexDatapoint($"{i}", row.ToArray()));
            pendingRegions.Add(new IndexDatapoint($"{i}", row.ToArray()));
            for (var r = 1; r < perImage; r++)
            {
                var region = new float[dimensions];
                for (var d = 0; d < dimensions; d++)
                {
                    region[d] = Math.Max(0, row[d] + (noise * random.NextSigned()));
                }

                System.Numerics.Tensors.TensorPrimitives.Divide(region, System.Numerics.Tensors.TensorPrimitives.Norm<float>(region), region);
                cosines += System.Numerics.Tensors.TensorPrimitives.Dot<float>(region, row);
                pendingRegions.Add(new IndexDatapoint($"{i}#{r}", region));
            }

            if (pendingSingle.Count == 4096 || i == count - 1)
            {
                single.Upsert(pendingSingle);
                regions.Upsert(pendingRegions);
                pendingSingle.Clear();
                pendingRegions.Clear();
            }
        });

        var engines = new (string Name, Func<float[], int> Search)[]
        {
            ("1 vector per image, top 10", q => single.Search(q, K).Count),
            ($"{perImage} vectors per image, top {K * perImage} rows deduplicated per image", q =>
                regions.Search(q, K * perImage).Select(m => m.Id.Split('#')[0]).Distinct(StringComparer.Ordinal).Take(K).Count()),
        };
        var latencies = engines.Select(_ => new List<double>()).ToArray();
        foreach (var (_, search) in engines)
        {
            var warmUp = Stopwatch.StartNew();
            for (var q = 0; warmUp.Elapsed.TotalSeconds < 1 || q < 5; q++)
            {
                search(queries[q % queries.Length]);
            }
        }

        var next = 0;
        for (var block = 0; block < blocks; block++)
        {
            for (var e = 0; e < engines.Length; e++)
            {
                var clock = Stopwatch.StartNew();
                while (clock.Elapsed.TotalSeconds < seconds)
                {
                    var start = Stopwatch.GetTimestamp();
                    engines[e].Search(queries[next++ % queries.Length]);
                    latencies[e].Add(Timing.Ms(Stopwatch.GetTimestamp() - start));
                }
            }
        }

        cli.Emit(new
        {
            count,
            perImage,
            dimensions,
            threads = Environment.ProcessorCount,
            blocks,
            secondsPerBlock = seconds,
            regionCosineToGlobal = perImage > 1 ? Math.Round(cosines / (count * (perImage - 1)), 3) : 1,
            engines = engines.Select((e, i) =>
            {
                var sorted = latencies[i].Order().ToList();
                return new
                {
                    engine = e.Name,
                    queries = sorted.Count,
                    p50Ms = Math.Round(Timing.Percentile(sorted, 50), 3),
                    p90Ms = Math.Round(Timing.Percentile(sorted, 90), 3),
                    // The index's arrays as allocated (grown by doubling, int8 codes included), and the float32 rows alone.
                    allocatedMiB = ProcessMemory.Mib(i == 0 ? single.VectorBytes : regions.VectorBytes),
                    rawFloat32MiB = ProcessMemory.Mib((long)count * (i == 0 ? 1 : perImage) * dimensions * sizeof(float)),
                };
            }).ToArray(),
        });
        return Task.FromResult(0);
    }

    /// <summary>
    /// What MATCH_CROPS costs the product's local search: --engines (default "none,views") each build an index of
    /// --count images as the write paths store them (IndexDatapoint.ForImage; with "views" also --views view
    /// datapoints per image, IndexDatapoint.ForView, at a cosine of about 0.89 to the image with the default --noise),
    /// in the int8-filtered exact mode the default bruteForceConfig deploys, and time the port's query path
    /// (InProcessVectorIndex.Search with NeighborQuery, top 10) in alternating blocks of --seconds. Memory per image:
    /// the index's allocated vector bytes, the managed heap's growth and the resident set's growth over the build
    /// (both after a full compacting collection); with two engines the second is built in memory the first's build
    /// has freed, so run one engine per process (--engines none, --engines views) for the memory figures.
    /// </summary>
    private static int RunProduct(Cli cli)
    {
        var count = cli.Int("count", 100_000);
        var viewsPerImage = cli.Int("views", 3);
        var dimensions = cli.Int("dims", 1280);
        var blocks = cli.Int("blocks", 6);
        var seconds = cli.Double("seconds", 2);
        var noise = (float)cli.Double("noise", 0.03);
        var engineNames = cli.Get("engines", "none,views").Split(',');
        var shortlist = cli.Int("shortlist", 80);
        if (engineNames.Any(name => name is not ("none" or "views" or "shortlist")) || viewsPerImage > ImageViews.Names.Count
            || (engineNames.Contains("shortlist") && !engineNames.Contains("none")))
        {
            Console.Error.WriteLine($"--engines takes none, views and shortlist (with none); --views at most {ImageViews.Names.Count}");
            return 2;
        }

        var engines = new List<(string Name, InProcessVectorIndex Index, int Neighbors, object Memory)>();
        float[][] queries = [];
        var cosines = 0.0;
        foreach (var name in engineNames.Where(name => name != "shortlist"))
        {
            var withViews = name == "views";
            Collect();
            var (rssBefore, heapBefore) = (ProcessMemory.Read("VmRSS"), GC.GetTotalMemory(forceFullCollection: true));
            var index = new InProcessVectorIndex(dimensions, DistanceMeasure.DotProduct, normalizeToUnitLength: false, VectorSearchMode.Exact);
            var random = new XorShift(777);
            var pending = new List<IndexDatapoint>();
            queries = SyntheticVectors.Generate(count, dimensions, cli.Int("queries", 200), (i, row) =>
            {
                var objectName = $"images/{i}.jpg";
                pending.Add(IndexDatapoint.ForImage(objectName, row.ToArray()));
                for (var v = 0; withViews && v < viewsPerImage; v++)
                {
                    var view = new float[dimensions];
                    for (var d = 0; d < dimensions; d++)
                    {
                        view[d] = Math.Max(0, row[d] + (noise * random.NextSigned()));
                    }

                    TensorPrimitives.Divide(view, TensorPrimitives.Norm<float>(view), view);
                    cosines += TensorPrimitives.Dot<float>(view, row);
                    pending.Add(IndexDatapoint.ForView(objectName, new ImageView(ImageViews.Names[v], view)));
                }

                if (pending.Count >= 4096 || i == count - 1)
                {
                    index.Upsert(pending);
                    pending.Clear();
                }
            });
            Collect();
            var (rss, heap) = (ProcessMemory.Read("VmRSS") - rssBefore, GC.GetTotalMemory(forceFullCollection: true) - heapBefore);
            engines.Add((withViews ? $"image + {viewsPerImage} views (MATCH_CROPS=true)" : "image only (today)", index, K, new
            {
                images = index.Count,
                views = index.ViewCount,
                vectorBytesPerImage = index.VectorBytes / count,
                managedBytesPerImage = heap / count,
                rssGrowthBytesPerImage = rss / count,
                rssGrowthMiB = ProcessMemory.Mib(rss),
                rawFloat32BytesPerImage = (withViews ? 1 + viewsPerImage : 1) * dimensions * sizeof(float),
            }));
        }

        if (engineNames.Contains("shortlist"))
        {
            // What the shortlist alone costs: the image-only index asked for --shortlist neighbours, nothing rescored.
            var imagesOnly = engines.First(e => e.Index.ViewCount == 0);
            engines.Add(($"image only, top {shortlist} (the shortlist without rescoring)", imagesOnly.Index, shortlist, new { }));
        }

        foreach (var (_, index, neighbors, _) in engines)
        {
            var warmUp = Stopwatch.StartNew();
            for (var q = 0; warmUp.Elapsed.TotalSeconds < 1 || q < 5; q++)
            {
                index.Search([new NeighborQuery("q", queries[q % queries.Length])], neighbors);
            }
        }

        var latencies = engines.Select(_ => new List<double>()).ToArray();
        // The exact search's own metric (Telemetry.IndexRowsScored): float32 rows scored after the int8 filter, per engine.
        var rowsScored = new long[engines.Count];
        // CPU time the process spent per engine: far less sensitive than wall time to other processes on a shared machine.
        var cpu = new TimeSpan[engines.Count];
        var current = 0;
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
        rowsScoredListener.SetMeasurementEventCallback<long>((_, value, _, _) => rowsScored[current] += value);
        rowsScoredListener.Start();
        var next = 0;
        var load = new List<double>();
        for (var block = 0; block < blocks; block++)
        {
            load.Add(LoadAverage());
            for (var e = 0; e < engines.Count; e++)
            {
                current = e;
                var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                while (clock.Elapsed.TotalSeconds < seconds)
                {
                    var query = new NeighborQuery("q", queries[next++ % queries.Length]);
                    var start = Stopwatch.GetTimestamp();
                    engines[e].Index.Search([query], engines[e].Neighbors);
                    latencies[e].Add(Timing.Ms(Stopwatch.GetTimestamp() - start));
                }

                cpu[e] += Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
            }
        }

        load.Add(LoadAverage());
        rowsScoredListener.Dispose();
        var p50s = latencies.Select(l => l.Count == 0 ? (double?)null : Math.Round(Timing.Percentile([.. l.Order()], 50), 3)).ToArray();
        cli.Emit(new
        {
            count,
            viewsPerImage,
            dimensions,
            threads = Environment.ProcessorCount,
            blocks,
            secondsPerBlock = seconds,
            loadAverage1MinMin = load.Count > 0 ? load.Min() : double.NaN,
            loadAverage1MinMax = load.Count > 0 ? load.Max() : double.NaN,
            viewCosineToImage = engines.Any(e => e.Index.ViewCount > 0) ? Math.Round(cosines / ((double)count * viewsPerImage), 3) : 1,
            engines = engines.Select((e, i) =>
            {
                var sorted = latencies[i].Order().ToList();
                return new
                {
                    engine = e.Name,
                    queries = sorted.Count,
                    p50Ms = p50s[i],
                    p90Ms = sorted.Count == 0 ? (double?)null : Math.Round(Timing.Percentile(sorted, 90), 3),
                    p50VsFirst = p50s[i] / p50s[0] is { } ratio ? Math.Round(ratio, 3) : (double?)null,
                    cpuMsPerQuery = sorted.Count == 0 ? (double?)null : Math.Round(cpu[i].TotalMilliseconds / sorted.Count, 3),
                    cpuVsFirst = sorted.Count == 0 ? (double?)null : Math.Round(cpu[i].TotalMilliseconds / sorted.Count / (cpu[0].TotalMilliseconds / latencies[0].Count), 3),
                    float32RowsScoredPerQuery = sorted.Count == 0 ? (double?)null : Math.Round(rowsScored[i] / (double)sorted.Count, 1),
                    memory = e.Memory,
                };
            }).ToArray(),
        });
        foreach (var index in engines.Select(e => e.Index).Distinct())
        {
            index.Dispose();
        }

        return 0;
    }

    /// <summary>A full compacting collection, so that what building left behind (grown-and-copied arrays) is given back.</summary>
    private static void Collect()
    {
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
    }

    private static double LoadAverage() =>
        double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
}
