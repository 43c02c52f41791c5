using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Embedding;
using SkiaSharp;

namespace ReverseImageSearch.Tests.Embedding;

/// <summary>
/// Luma input (EmbedderOptions' default, MATCH_COLOR=false): grayscale and recoloured copies of a picture get nearly its
/// vector; colour input (MATCH_COLOR=true, the product's default) keeps them apart.
/// </summary>
public sealed class ColourInvarianceTests
{
    private static readonly float[] GrayscaleMatrix =
    [
        0.299f, 0.587f, 0.114f, 0, 0,
        0.299f, 0.587f, 0.114f, 0, 0,
        0.299f, 0.587f, 0.114f, 0, 0,
        0, 0, 0, 1, 0,
    ];

    // Swaps red and blue: the same picture in other colours, with the luma changed too.
    private static readonly float[] SwapRedBlueMatrix =
    [
        0, 0, 1, 0, 0,
        0, 1, 0, 0, 0,
        1, 0, 0, 0, 0,
        0, 0, 0, 1, 0,
    ];

    private static byte[] Picture(float[]? colourMatrix)
    {
        using var scene = TestImages.DrawScene(400, 300);
        using var copy = new SKBitmap(scene.Width, scene.Height);
        using (var canvas = new SKCanvas(copy))
        using (var paint = new SKPaint())
        {
            if (colourMatrix is not null)
            {
                paint.ColorFilter = SKColorFilter.CreateColorMatrix(colourMatrix);
            }

            using var image = SKImage.FromBitmap(scene);
            canvas.DrawImage(image, 0, 0, new SKSamplingOptions(SKFilterMode.Nearest), paint);
        }

        return TestImages.Encode(copy, SKEncodedImageFormat.Png);
    }

    private static async Task<(double Grayscale, double Recoloured)> CosinesToTheOriginalAsync(EmbedderOptions options)
    {
        using var embedder = new OnnxImageEmbedder(options, NullLogger<OnnxImageEmbedder>.Instance);
        var original = await embedder.EmbedOneAsync(Picture(null));
        var grayscale = await embedder.EmbedOneAsync(Picture(GrayscaleMatrix));
        var recoloured = await embedder.EmbedOneAsync(Picture(SwapRedBlueMatrix));
        return (EmbeddingTestSupport.Cosine(original, grayscale), EmbeddingTestSupport.Cosine(original, recoloured));
    }

    /// <summary>The product's embedder, as the functions get it, for MATCH_COLOR=<paramref name="matchColor"/>.</summary>
    private static async Task<(double Grayscale, double Recoloured)> ProductCosinesAsync(bool? matchColor)
    {
        var options = matchColor is { } value ? TestOptions.Load(("MATCH_COLOR", value ? "true" : "false")) : TestOptions.Load();
        await using var services = new ServiceCollection().AddLogging().AddReverseImageSearchCore(options).AddImageEmbedder().BuildServiceProvider();
        var embedder = services.GetRequiredService<IImageEmbedder>();
        var vectors = await embedder.EmbedAsync([Picture(null), Picture(GrayscaleMatrix), Picture(SwapRedBlueMatrix)]);
        return (EmbeddingTestSupport.Cosine(vectors[0].Vector!, vectors[1].Vector!), EmbeddingTestSupport.Cosine(vectors[0].Vector!, vectors[2].Vector!));
    }

    [Test]
    public async Task MatchColorChoosesWhetherTheProductsEmbedderSeesColour()
    {
        var luma = await ProductCosinesAsync(matchColor: false);
        var colour = await ProductCosinesAsync(matchColor: true);
        var byDefault = await ProductCosinesAsync(matchColor: null);

        Assert.Multiple(() =>
        {
            Assert.That(luma.Grayscale, Is.GreaterThan(0.995), "MATCH_COLOR=false: a grayscale copy gets its original's vector");
            Assert.That(colour.Grayscale, Is.LessThan(luma.Grayscale - 0.01), "MATCH_COLOR=true: a grayscale copy is told apart");
            Assert.That(colour.Recoloured, Is.LessThan(luma.Recoloured - 0.01), "MATCH_COLOR=true: a recoloured copy is told apart");
            Assert.That(byDefault, Is.EqualTo(colour), "MATCH_COLOR defaults to true");
        });
    }

    [Test]
    public async Task AGrayscaleCopyGetsTheVectorOfItsColourOriginal()
    {
        var (grayscale, _) = await CosinesToTheOriginalAsync(new EmbedderOptions(EmbedderOptions.BundledModelPath));

        // Not exactly 1: the copy's luma is rounded to 8 bits (and Skia's colour filter rounds its own way) before encoding.
        Assert.That(grayscale, Is.GreaterThan(0.995));
    }

    [Test]
    public async Task LumaInputBringsRecolouredAndGrayscaleCopiesCloserThanColourInput()
    {
        var luma = await CosinesToTheOriginalAsync(new EmbedderOptions(EmbedderOptions.BundledModelPath));
        var colour = await CosinesToTheOriginalAsync(new EmbedderOptions(EmbedderOptions.BundledModelPath, Grayscale: false));

        Assert.Multiple(() =>
        {
            Assert.That(colour.Grayscale, Is.LessThan(luma.Grayscale - 0.01), "colour input separates a grayscale copy");
            Assert.That(colour.Recoloured, Is.LessThan(luma.Recoloured), "colour input separates a recoloured copy further");
        });
    }
}
