using BenchmarkDotNet.Attributes;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.VectorIndex;

namespace ReverseImageSearch.Benchmarks;

/// <summary>One top-10 query against N unit vectors of 1280 dimensions: exact float32, and int8 with float16 rescoring.</summary>
public class IndexSearchBenchmarks
{
    private const int Dimensions = 1280;
    private InProcessVectorIndex? _exact;
    private QuantizedVectorSearch? _quantized;
    private float[][] _queries = [];
    private int _next;

    [Params(10_000, 100_000)]
    public int Vectors { get; set; } = 10_000;

    [GlobalSetup]
    public void Setup()
    {
        var folder = Environment.GetEnvironmentVariable("RIS_BENCH_VECTORS") ?? Path.Combine(Path.GetTempPath(), "ris-bench-vectors");
        var vectorsPath = Path.Combine(folder, $"vectors-{Vectors}x{Dimensions}.f32");
        var queriesPath = Path.Combine(folder, $"queries-{Vectors}x{Dimensions}.f32");
        if (!File.Exists(vectorsPath))
        {
            SyntheticVectors.Run(Cli.Parse(["--out", folder, "--count", $"{Vectors}", "--dims", $"{Dimensions}", "--json", Path.Combine(folder, "last.json")]));
        }

        _exact = new InProcessVectorIndex(Dimensions, DistanceMeasure.DotProduct);
        _quantized = new QuantizedVectorSearch(Dimensions, Vectors);
        for (var first = 0; first < Vectors; first += 4096)
        {
            var rows = Math.Min(4096, Vectors - first);
            var values = SyntheticVectors.ReadRows(vectorsPath, Dimensions, first, rows);
            var batch = new List<IndexDatapoint>(rows);
            for (var r = 0; r < rows; r++)
            {
                var vector = values.AsSpan(r * Dimensions, Dimensions).ToArray();
                batch.Add(new IndexDatapoint($"{first + r}", vector));
                _quantized.Add($"{first + r}", vector);
            }

            _exact.Upsert(batch);
        }

        _queries = Enumerable.Range(0, 32).Select(q => SyntheticVectors.ReadRows(queriesPath, Dimensions, q, 1)).ToArray();
    }

    [GlobalCleanup]
    public void Cleanup() => _exact?.Dispose();

    [Benchmark(Baseline = true, Description = "exact float32 top-10")]
    public int Exact() => _exact!.Search(_queries[_next++ % _queries.Length], 10).Count;

    [Benchmark(Description = "int8 scan + float16 rescoring top-10")]
    public int Quantized() => _quantized!.Search(_queries[_next++ % _queries.Length], 10).Count;
}
