using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Embedding;

/// <param name="ModelPath">A local ONNX file (a MODEL_URL download is resolved to its cached file first).</param>
/// <param name="MaxImagePixels">Images whose header claims more pixels are rejected before decoding.</param>
/// <param name="L2Normalize">Scale every vector to unit length. The model's features are all non-negative with
/// norms from about 7 to 16, so raw dot products favour "busy" images; unit vectors make every distance
/// measure rank by the angle between images.</param>
/// <param name="IntraOpThreads">ONNX Runtime threads per inference; 0 lets it choose (one per core).</param>
/// <param name="MaxBatchSize">Images per inference call. ONNX Runtime keeps the peak activations of a call: a backfill
/// of 400 images peaked at 355 MB resident with batches of 8, 546 MB with 16 and 960 MB with 32, and batches larger
/// than 8 are no faster per image (BENCHMARKS.md section 1), so functions stay inside 512 MB.</param>
/// <param name="DecodeParallelism">Images of a batch decoded at once; 0 means one per core.</param>
/// <param name="Grayscale">Feed the model the image's luma in all three channels, so recoloured, colour-jittered and
/// grayscale copies of a picture get nearly the vector of the original. Copy detection (BENCHMARKS.md section 6):
/// grayscale copies go from 0.69 to 0.99 recall@1, and nothing else loses; free at run time. Pictures that differ only
/// in colour then look alike: the product sets this from MATCH_COLOR (false: luma), whose default is colour input.</param>
/// <param name="PowerNormalize">Take the square root of every feature before normalising, so a few strong
/// activations do not dominate the angle between images (power normalisation); about +0.01 to +0.03 recall@1.</param>
/// <param name="StoreViews">Images being stored (<see cref="OnnxImageEmbedder.EmbedForIndexAsync"/>) also get the vectors
/// of their views (Core.Coordination.ImageViews): the squares at the two ends of a wide or tall picture and the centre
/// square at 70% of its side, each a separate inference; up to 4 per image, so a round decodes a quarter of
/// <paramref name="MaxBatchSize"/> images to keep each inference call within the batch. Set from MATCH_CROPS.</param>
public sealed record EmbedderOptions(
    string ModelPath,
    int InputHeight = 224,
    int InputWidth = 224,
    long MaxImagePixels = 50_000_000,
    bool L2Normalize = true,
    int IntraOpThreads = 0,
    int MaxBatchSize = 8,
    int DecodeParallelism = 0,
    bool Grayscale = true,
    bool PowerNormalize = true,
    bool StoreViews = false)
{
    /// <summary>The bundled MobileNetV2 model, copied next to every function's assembly.</summary>
    public static string BundledModelPath => Path.Combine(AppContext.BaseDirectory, "models", "mobilenet_v2", "model.onnx");

    /// <summary>The bundled model statically quantised to int8 (same input and output; see models/mobilenet_v2/README.md).</summary>
    public static string BundledInt8ModelPath => Path.Combine(AppContext.BaseDirectory, "models", "mobilenet_v2", "model.int8.onnx");

    public static string BundledModelPathFor(ModelPrecision precision) => precision switch
    {
        ModelPrecision.Float32 => BundledModelPath,
        ModelPrecision.Int8 => BundledInt8ModelPath,
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, null),
    };
}
