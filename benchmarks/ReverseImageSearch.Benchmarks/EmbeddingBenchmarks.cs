using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Embedding;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// The whole embedding pipeline (decode with reduced-scale JPEG decoding, EXIF orientation, centre crop, resize,
/// MobileNetV2 inference, L2 normalisation) on photo-like JPEGs. One operation is one EmbedAsync call on a batch of
/// Batch images, so images/s is Batch divided by BenchmarkDotNet's mean. Threads bounds decoding and inference.
/// Model is float32 (the bundled model, or RIS_BENCH_MODEL), int8 (the bundled int8 quantisation) or a path;
/// RIS_BENCH_MODELS lists the ones to run (default float32), RIS_BENCH_SIZES the image sizes.
/// </summary>
public class EmbeddingBenchmarks
{
    private OnnxImageEmbedder? _embedder;
    private ReadOnlyMemory<byte>[] _batch = [];

    /// <summary>RIS_BENCH_QUICK=1 (the smoke run) takes the small images and batches only.</summary>
    private static bool Quick => Environment.GetEnvironmentVariable("RIS_BENCH_QUICK") == "1";

    public static IEnumerable<string> Sizes =>
        List("RIS_BENCH_SIZES") ?? (Quick ? ["1024x768"] : ["1024x768", "4000x3000"]);

    public static IEnumerable<string> Models => List("RIS_BENCH_MODELS") ?? ["float32"];

    public static IEnumerable<int> Batches => Quick ? [1, 8] : [1, 8, 32];

    [ParamsSource(nameof(Sizes))]
    public string Size { get; set; } = "1024x768";

    [ParamsSource(nameof(Batches))]
    public int Batch { get; set; } = 1;

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    [ParamsSource(nameof(Models))]
    public string Model { get; set; } = "float32";

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
            new EmbedderOptions(ModelPath(Model), IntraOpThreads: Threads, MaxBatchSize: Batch, DecodeParallelism: Threads),
            NullLogger<OnnxImageEmbedder>.Instance);
    }

    [GlobalCleanup]
    public void Cleanup() => _embedder?.Dispose();

    /// <summary>One operation embeds the whole batch: images/s is Batch divided by the mean.</summary>
    [Benchmark(Description = "embed (decode+orient+crop+resize+infer)")]
    public int Embed()
    {
        var results = _embedder!.EmbedAsync(_batch).GetAwaiter().GetResult();
        return results.Count;
    }

    public static string ModelPath() =>
        Environment.GetEnvironmentVariable("RIS_BENCH_MODEL") is { Length: > 0 } path ? path : EmbedderOptions.BundledModelPath;

    public static string ModelPath(string model) => model switch
    {
        "float32" => ModelPath(),
        "int8" => EmbedderOptions.BundledModelPathFor(ModelPrecision.Int8),
        _ => model,
    };

    private static string[]? List(string variable) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value.Split(',', StringSplitOptions.RemoveEmptyEntries) : null;
}

/// <summary>What mirror invariance (<see cref="Mirroring"/>) would cost a single query: one 1024x768 JPEG, embedded in one
/// batch with its mirrored copy (made beforehand) and the two vectors averaged.</summary>
public class MirrorInvariantEmbeddingBenchmarks
{
    private OnnxImageEmbedder? _embedder;
    private ReadOnlyMemory<byte>[] _batch = [];

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    [Params(false, true)]
    public bool Mirror { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var folder = Environment.GetEnvironmentVariable("RIS_BENCH_IMAGES") ?? Path.Combine(Path.GetTempPath(), "ris-bench-images");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "img1024x768-00000.jpg");
        if (!File.Exists(path))
        {
            File.WriteAllBytes(path, SyntheticImages.Create(1024, 768, 100_003));
        }

        var image = File.ReadAllBytes(path);
        _batch = Mirror ? [image, Mirroring.MirroredPng(image)] : [image];
        _embedder = new OnnxImageEmbedder(
            new EmbedderOptions(EmbeddingBenchmarks.ModelPath(), IntraOpThreads: Threads, MaxBatchSize: 2, DecodeParallelism: Threads),
            NullLogger<OnnxImageEmbedder>.Instance);
    }

    [GlobalCleanup]
    public void Cleanup() => _embedder?.Dispose();

    [Benchmark(Description = "embed one query image")]
    public int Embed()
    {
        var results = _embedder!.EmbedAsync(_batch).GetAwaiter().GetResult();
        return (results.Count == 2 ? Mirroring.Average(results[0].Vector!, results[1].Vector!) : results[0].Vector!).Length;
    }
}
