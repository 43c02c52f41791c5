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
        _exact = new InProcessVectorIndex(Dimensions, DistanceMeasure.DotProduct);
        _quantized = new QuantizedVectorSearch(Dimensions, Vectors);
        var pending = new List<IndexDatapoint>(4096);
        _queries = SyntheticVectors.Generate(Vectors, Dimensions, 32, (i, row) =>
        {
            var vector = row.ToArray();
            _quantized.Add($"{i}", vector);
            pending.Add(new IndexDatapoint($"{i}", vector));
            if (pending.Count == 4096 || i == Vectors - 1)
            {
                _exact.Upsert(pending);
                pending.Clear();
            }
        });
    }

    [GlobalCleanup]
    public void Cleanup() => _exact?.Dispose();

    [Benchmark(Baseline = true, Description = "exact float32 top-10")]
    public int Exact() => _exact!.Search(_queries[_next++ % _queries.Length], 10).Count;

    [Benchmark(Description = "int8 scan + float16 rescoring top-10")]
    public int Quantized() => _quantized!.Search(_queries[_next++ % _queries.Length], 10).Count;
}
