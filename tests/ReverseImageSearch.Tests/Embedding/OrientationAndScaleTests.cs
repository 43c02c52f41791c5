using ReverseImageSearch.Embedding;
using SkiaSharp;

namespace ReverseImageSearch.Tests.Embedding;

/// <summary>EXIF orientation is applied, and large JPEGs are decoded at a reduced scale without changing what they show.</summary>
public sealed class OrientationAndScaleTests
{
    private OnnxImageEmbedder _embedder = null!;

    [OneTimeSetUp]
    public void LoadModel() => _embedder = EmbeddingTestSupport.CreateEmbedder();

    [OneTimeTearDown]
    public void UnloadModel() => _embedder.Dispose();

    // 6 (a quarter turn clockwise to view) and 8 (a quarter turn anticlockwise) are what phone cameras write.
    [TestCase(6)]
    [TestCase(8)]
    public async Task ExifOrientationMakesStoredRotatedPixelsUpright(int orientation)
    {
        using var upright = TestImages.DrawScene(480, 360);
        using var stored = TestImages.ToStoredPixels(upright, orientation);
        var storedJpeg = TestImages.Encode(stored, SKEncodedImageFormat.Jpeg, 95);

        var uprightEmbedding = await _embedder.EmbedOneAsync(TestImages.Encode(upright, SKEncodedImageFormat.Jpeg, 95));
        var orientedEmbedding = await _embedder.EmbedOneAsync(TestImages.WithExifOrientation(storedJpeg, (ushort)orientation));
        var ignoredOrientationEmbedding = await _embedder.EmbedOneAsync(storedJpeg);

        var oriented = EmbeddingTestSupport.Cosine(orientedEmbedding, uprightEmbedding);
        var ignored = EmbeddingTestSupport.Cosine(ignoredOrientationEmbedding, uprightEmbedding);
        TestContext.Out.WriteLine($"cosine to upright: with orientation {oriented:F4}, raw rotated pixels {ignored:F4}");
        Assert.Multiple(() =>
        {
            Assert.That(oriented, Is.GreaterThan(0.99));
            Assert.That(ignored, Is.LessThan(oriented - 0.05), "the raw rotated pixels should look clearly different");
        });
    }

    [TestCase(2)]
    [TestCase(3)]
    [TestCase(4)]
    [TestCase(5)]
    [TestCase(6)]
    [TestCase(7)]
    [TestCase(8)]
    public void EveryExifOrientationGivesTheUprightPixels(int orientation)
    {
        using var upright = TestImages.DrawScene(300, 200);
        using var stored = TestImages.ToStoredPixels(upright, orientation);
        var storedJpeg = TestImages.Encode(stored, SKEncodedImageFormat.Jpeg, 100);

        var expected = Preprocess(TestImages.Encode(upright, SKEncodedImageFormat.Jpeg, 100));
        var oriented = Preprocess(TestImages.WithExifOrientation(storedJpeg, (ushort)orientation));
        var ignored = Preprocess(storedJpeg);

        Assert.Multiple(() =>
        {
            Assert.That(MeanAbsoluteError(oriented, expected), Is.LessThan(1.5 / 255), "oriented like the upright picture");
            Assert.That(MeanAbsoluteError(ignored, expected), Is.GreaterThan(10.0 / 255), "the stored pixels alone differ");
        });
    }

    [Test]
    public void LargeJpegIsDecodedAtAReducedScale()
    {
        using var picture = TestImages.DrawScene(4000, 3000);
        var preprocessor = EmbeddingTestSupport.CreatePreprocessor();
        var tensor = new float[preprocessor.TensorLength];

        var result = preprocessor.Preprocess(TestImages.Encode(picture, SKEncodedImageFormat.Jpeg), tensor);

        TestContext.Out.WriteLine($"decoded at {result.DecodedWidth} x {result.DecodedHeight}");
        Assert.Multiple(() =>
        {
            Assert.That(result.RejectionReason, Is.Null);
            Assert.That(Math.Min(result.DecodedWidth, result.DecodedHeight), Is.GreaterThanOrEqualTo(224), "still covers the model input");
            Assert.That(result.DecodedHeight, Is.LessThanOrEqualTo(3000 / 4), "decoded at a quarter of the size or less");
            Assert.That(result.DecodedWidth * 3, Is.EqualTo(result.DecodedHeight * 4).Within(8), "aspect ratio kept");
        });
    }

    [Test]
    public async Task LargeJpegEmbedsLikeTheSamePictureAt1024Pixels()
    {
        using var large = TestImages.DrawScene(4000, 3000);
        using var small = TestImages.DrawScene(1024, 768);

        var largeEmbedding = await _embedder.EmbedOneAsync(TestImages.Encode(large, SKEncodedImageFormat.Jpeg));
        var smallEmbedding = await _embedder.EmbedOneAsync(TestImages.Encode(small, SKEncodedImageFormat.Jpeg));

        Assert.That(EmbeddingTestSupport.Cosine(largeEmbedding, smallEmbedding), Is.GreaterThan(0.98));
    }

    [Test]
    public async Task LargePngIsShrunkWithoutAliasing()
    {
        // PNG cannot be decoded at a reduced scale, so the resize itself must average a 13x reduction.
        using var large = TestImages.DrawScene(4000, 3000);
        using var small = TestImages.DrawScene(1024, 768);

        var largeEmbedding = await _embedder.EmbedOneAsync(TestImages.Encode(large, SKEncodedImageFormat.Png));
        var smallEmbedding = await _embedder.EmbedOneAsync(TestImages.Encode(small, SKEncodedImageFormat.Png));

        Assert.That(EmbeddingTestSupport.Cosine(largeEmbedding, smallEmbedding), Is.GreaterThan(0.98));
    }

    private static float[] Preprocess(byte[] encoded)
    {
        var preprocessor = EmbeddingTestSupport.CreatePreprocessor();
        var tensor = new float[preprocessor.TensorLength];
        Assert.That(preprocessor.Preprocess(encoded, tensor).RejectionReason, Is.Null);
        return tensor;
    }

    private static double MeanAbsoluteError(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Average();
}
