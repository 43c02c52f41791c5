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
        var vectorsPath = cli.Require("vectors");
        var dimensions = cli.Int("dims", 1280);
        var indexDirectory = Directory.GetDirectories(Path.Combine(data, "vector-search", "indexes")).Single();
        using var index = InProcessVectorIndex.Open(indexDirectory, dimensions, DistanceMeasure.DotProduct, normalizeToUnitLength: false, NullLogger.Instance);
        var available = SyntheticVectors.RowCount(vectorsPath, dimensions);
        var needed = Math.Max(0, total - index.Count);
        for (var first = 0; first < needed; first += 4096)
        {
            var rows = Math.Min(4096, needed - first);
            var values = SyntheticVectors.ReadRows(vectorsPath, dimensions, first % available, Math.Min(rows, available - (first % available)));
            rows = values.Length / dimensions;
            index.Upsert(Enumerable.Range(0, rows).Select(r => new IndexDatapoint($"synthetic/{first + r:D6}.jpg", values.AsSpan(r * dimensions, dimensions).ToArray())).ToList());
        }

        index.Compact();
        cli.Emit(new { indexDirectory, count = index.Count });
        return 0;
    }
}
