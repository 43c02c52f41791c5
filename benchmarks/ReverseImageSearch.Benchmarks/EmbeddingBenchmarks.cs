using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Embedding;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// The whole embedding pipeline (decode with reduced-scale JPEG decoding, EXIF orientation, centre crop, resize,
/// MobileNetV2 inference, L2 normalisation) on photo-like JPEGs. One operation is one image, so BenchmarkDotNet's
/// mean is seconds per image and images/s is its inverse. Threads bounds both decoding and inference.
/// </summary>
[InvocationCount(1)]
public class EmbeddingBenchmarks
{
    private OnnxImageEmbedder? _embedder;
    private ReadOnlyMemory<byte>[] _batch = [];

    [Params("1024x768", "4000x3000")]
    public string Size { get; set; } = "1024x768";

    [Params(1, 8, 32)]
    public int Batch { get; set; } = 1;

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    [GlobalSetup]
    public void Setup()
    {
        var parts = Size.Split('x');
        var (width, height) = (int.Parse(parts[0]), int.Parse(parts[1]));
        var folder = Environment.GetEnvironmentVariable("RIS_BENCH_IMAGES") ?? Path.Combine(Path.GetTempPath(), "ris-bench-images");
        Directory.CreateDirectory(folder);
        _batch = Enumerable.Range(0, Batch).Select(i =>
        {
            var path = Path.Combine(folder, $"img{width}x{height}-{i:D5}.jpg");
            if (!File.Exists(path))
            {
                File.WriteAllBytes(path, SyntheticImages.Create(width, height, 100_003 + i));
            }

            return (ReadOnlyMemory<byte>)File.ReadAllBytes(path);
        }).ToArray();
        _embedder = new OnnxImageEmbedder(
            new EmbedderOptions(ModelPath(), IntraOpThreads: Threads, MaxBatchSize: Batch, DecodeParallelism: Threads),
            NullLogger<OnnxImageEmbedder>.Instance);
    }

    [GlobalCleanup]
    public void Cleanup() => _embedder?.Dispose();

    [Benchmark(Description = "embed (decode+orient+crop+resize+infer)")]
    public int Embed()
    {
        var results = _embedder!.EmbedAsync(_batch).GetAwaiter().GetResult();
        return results.Count;
    }

    public static string ModelPath() =>
        Environment.GetEnvironmentVariable("RIS_BENCH_MODEL") is { Length: > 0 } path ? path : EmbedderOptions.BundledModelPath;
}
