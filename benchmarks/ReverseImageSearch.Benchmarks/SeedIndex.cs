using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.VectorIndex;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// Grows a deployed local index (the emulator's data folder, stopped) to --total vectors with synthetic
/// embeddings, so the callable can be timed against 100k vectors without embedding 100k images.
/// </summary>
internal static class SeedIndex
{
    public static int Run(Cli cli)
    {
        var data = cli.Require("data");
        var total = cli.Int("total", 100_000);
        var dimensions = cli.Int("dims", 1280);
        var indexDirectory = Directory.GetDirectories(Path.Combine(data, "vector-search", "indexes")).Single();
        using var index = InProcessVectorIndex.Open(indexDirectory, dimensions, DistanceMeasure.DotProduct, normalizeToUnitLength: false, NullLogger.Instance);
        var needed = Math.Max(0, total - index.Count);
        var pending = new List<IndexDatapoint>(4096);
        SyntheticVectors.Generate(needed, dimensions, 2, (i, row) =>
        {
            pending.Add(new IndexDatapoint($"synthetic/{i:D6}.jpg", row.ToArray()));
            if (pending.Count == 4096 || i == needed - 1)
            {
                index.Upsert(pending);
                pending.Clear();
            }
        });

        index.Compact();
        cli.Emit(new { indexDirectory, count = index.Count });
        return 0;
    }
}
