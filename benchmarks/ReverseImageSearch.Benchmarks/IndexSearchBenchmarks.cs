using BenchmarkDotNet.Attributes;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.VectorIndex;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// One top-10 query against N unit vectors of 1280 dimensions: the float32 scan, the exact int8-filtered search
/// (the index's default, the same answers), and int8 with float16 rescoring (approximate).
/// </summary>
public class IndexSearchBenchmarks
{
    private const int Dimensions = 1280;
    private InProcessVectorIndex? _float32;
    private InProcessVectorIndex? _exact;
    private QuantizedVectorSearch? _quantized;
    private float[][] _queries = [];
    private int _next;

    [Params(10_000, 100_000)]
    public int Vectors { get; set; } = 10_000;

    [GlobalSetup]
    public void Setup()
    {
        _float32 = new InProcessVectorIndex(Dimensions, DistanceMeasure.DotProduct, searchMode: VectorSearchMode.Float32Scan);
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
                _float32.Upsert(pending);
                _exact.Upsert(pending);
                pending.Clear();
            }
        });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _float32?.Dispose();
        _exact?.Dispose();
    }

    [Benchmark(Baseline = true, Description = "float32 scan top-10")]
    public int Float32() => _float32!.Search(_queries[_next++ % _queries.Length], 10).Count;

    [Benchmark(Description = "exact int8-filtered top-10")]
    public int Exact() => _exact!.Search(_queries[_next++ % _queries.Length], 10).Count;

    [Benchmark(Description = "int8 scan + float16 rescoring top-10")]
    public int Quantized() => _quantized!.Search(_queries[_next++ % _queries.Length], 10).Count;
}
