using System.Diagnostics;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.VectorIndex;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// What region vectors cost the local exact search (issue 12, item 2): one index of --count images with one vector
/// each, and one with --per-image vectors per image (the global vector, plus region vectors made from it with noise so
/// that they sit at a cosine of about 0.85 to it, as measured region vectors do), searched in alternating blocks of
/// --seconds each so that load from other processes hits both. The region index is asked for k x per-image rows,
/// which holds k distinct images once deduplicated (what an index without a crowding option has to do).
/// </summary>
internal static class RegionSearchCost
{
    private const int K = 10;

    public static Task<int> RunAsync(Cli cli)
    {
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
}
