using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Embedding;
using SkiaSharp;

namespace ReverseImageSearch.Tests.Embedding;

public sealed class MirrorInvariantTests
{
    private static byte[] Asymmetric(bool mirrored)
    {
        using var bitmap = new SKBitmap(320, 240);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(new SKColor(30, 40, 60));
            using var paint = new SKPaint { Color = new SKColor(230, 180, 40), IsAntialias = true };
            var x = mirrored ? 320 - 70 : 70;
            canvas.DrawCircle(x, 120, 50, paint);
            paint.Color = new SKColor(40, 200, 120);
            canvas.DrawRect(mirrored ? 320 - 300 : 200, 30, 100, 60, paint);
        }

        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    private static OnnxImageEmbedder Create(bool mirrorInvariant) =>
        new(new EmbedderOptions(EmbedderOptions.BundledModelPath, MirrorInvariant: mirrorInvariant), NullLogger<OnnxImageEmbedder>.Instance);

    private static double Cosine(float[] a, float[] b) => a.Zip(b, (x, y) => (double)x * y).Sum();

    [Test]
    public async Task AnImageAndItsMirrorGetTheSameUnitVector()
    {
        using var embedder = Create(mirrorInvariant: true);
        var results = await embedder.EmbedAsync([Asymmetric(false), Asymmetric(true)]);

        var (a, b) = (results[0].Vector!, results[1].Vector!);
        Assert.That(Cosine(a, b), Is.GreaterThan(0.9999));
        Assert.That(Math.Sqrt(Cosine(a, a)), Is.EqualTo(1).Within(1e-5));
    }

    [Test]
    public async Task WithoutTheOptionAMirrorIsADifferentVector()
    {
        using var embedder = Create(mirrorInvariant: false);
        var results = await embedder.EmbedAsync([Asymmetric(false), Asymmetric(true)]);

        Assert.That(Cosine(results[0].Vector!, results[1].Vector!), Is.LessThan(0.9999));
    }
}
