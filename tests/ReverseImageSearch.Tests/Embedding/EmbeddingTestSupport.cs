using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Embedding;

namespace ReverseImageSearch.Tests.Embedding;

internal static class EmbeddingTestSupport
{
    public static OnnxImageEmbedder CreateEmbedder(bool l2Normalize = true, int maxBatchSize = 32, long maxImagePixels = 50_000_000) =>
        new(new EmbedderOptions(EmbedderOptions.BundledModelPath, L2Normalize: l2Normalize, MaxBatchSize: maxBatchSize, MaxImagePixels: maxImagePixels),
            NullLogger<OnnxImageEmbedder>.Instance);

    /// <summary>The model's own output for the colour input: no grayscale, no power or L2 normalisation.</summary>
    public static OnnxImageEmbedder CreateRawModelEmbedder(int maxBatchSize = 32) =>
        new(new EmbedderOptions(EmbedderOptions.BundledModelPath, L2Normalize: false, MaxBatchSize: maxBatchSize, Grayscale: false, PowerNormalize: false),
            NullLogger<OnnxImageEmbedder>.Instance);

    public static ImagePreprocessor CreatePreprocessor() => new(224, 224, 50_000_000);

    public static async Task<float[]> EmbedOneAsync(this IImageEmbedder embedder, byte[] image)
    {
        var results = await embedder.EmbedAsync([image]);
        Assert.That(results[0].RejectionReason, Is.Null);
        return results[0].Vector!;
    }

    public static double Cosine(float[] a, float[] b)
    {
        double dot = 0, normA = 0, normB = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            normA += (double)a[i] * a[i];
            normB += (double)b[i] * b[i];
        }

        return dot / Math.Sqrt(normA * normB);
    }

    public static double Norm(float[] vector) => Math.Sqrt(vector.Sum(v => (double)v * v));
}
