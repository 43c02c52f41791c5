using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Embedding;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// How close two models' embeddings are, through the product's embedder (decode, resize, inference, L2 norm):
///   ris-bench agree --model A.onnx --other B.onnx --images DIR[,DIR...] [--limit N] [--colour]
/// The embedder runs with its default options (luma input, power normalisation) unless --colour (colour input, plain
/// L2 normalisation: the embedder before those defaults).
/// Reports the cosine between A's and B's unit vector of every image (min, percentiles, mean), and how often the
/// nearest other image of the folder is the same under both models.
/// </summary>
internal static class ModelAgreement
{
    public static async Task<int> RunAsync(Cli cli)
    {
        var model = cli.Require("model");
        var other = cli.Require("other");
        var folders = cli.Require("images").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var files = ImageFolders.Files(folders, cli.Int("limit", int.MaxValue));
        var images = files.Select(f => (ReadOnlyMemory<byte>)File.ReadAllBytes(f)).ToArray();
        var colour = cli.Flag("colour");
        var a = await EmbedAsync(model, images, colour);
        var b = await EmbedAsync(other, images, colour);
        var pairs = Enumerable.Range(0, files.Length).Where(i => a[i] is not null && b[i] is not null).ToArray();
        var cosines = pairs.Select(i => (double)System.Numerics.Tensors.TensorPrimitives.Dot<float>(a[i]!, b[i]!)).ToList();
        cosines.Sort();
        var sameNeighbor = pairs.Count(i => Nearest(a, i, pairs) == Nearest(b, i, pairs));
        var worst = pairs.OrderBy(i => System.Numerics.Tensors.TensorPrimitives.Dot<float>(a[i]!, b[i]!)).Take(3)
            .Select(i => new { file = files[i], cosine = Math.Round(System.Numerics.Tensors.TensorPrimitives.Dot<float>(a[i]!, b[i]!), 5) }).ToArray();
        cli.Emit(new
        {
            model,
            other,
            input = colour ? "colour, L2" : "default (luma, power normalisation, L2)",
            imageFolders = folders,
            images = files.Length,
            compared = pairs.Length,
            cosine = new
            {
                min = Math.Round(cosines[0], 5),
                p1 = Math.Round(Timing.Percentile(cosines, 1), 5),
                p5 = Math.Round(Timing.Percentile(cosines, 5), 5),
                median = Math.Round(Timing.Percentile(cosines, 50), 5),
                mean = Math.Round(cosines.Average(), 5),
                max = Math.Round(cosines[^1], 5),
            },
            sameNearestNeighbor = Math.Round(sameNeighbor / (double)pairs.Length, 4),
            worst,
        });
        return 0;
    }

    private static int Nearest(float[]?[] vectors, int i, int[] candidates) =>
        candidates.Where(j => j != i).MaxBy(j => System.Numerics.Tensors.TensorPrimitives.Dot<float>(vectors[i]!, vectors[j]!));

    private static async Task<float[]?[]> EmbedAsync(string model, ReadOnlyMemory<byte>[] images, bool colour)
    {
        var options = new EmbedderOptions(model, MaxBatchSize: 8);
        if (colour)
        {
            options = options with { Grayscale = false, PowerNormalize = false };
        }

        using var embedder = new OnnxImageEmbedder(options, NullLogger<OnnxImageEmbedder>.Instance);
        var vectors = new float[]?[images.Length];
        for (var start = 0; start < images.Length; start += 32)
        {
            var results = await embedder.EmbedAsync(images[start..Math.Min(images.Length, start + 32)]);
            for (var i = 0; i < results.Count; i++)
            {
                vectors[start + i] = results[i].Vector;
            }
        }

        return vectors;
    }
}
