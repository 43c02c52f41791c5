using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Embedding;
using SkiaSharp;

namespace ReverseImageSearch.Tests.Embedding;

/// <summary>Every accepted format is recognised by its content, decodes to the right pixels, and embeds.</summary>
public sealed class ImageFormatTests
{
    private static readonly ImageFormat[] AllFormats = Enum.GetValues<ImageFormat>();

    private OnnxImageEmbedder _embedder = null!;
    private SKBitmap _picture = null!;
    private byte[] _pictureIndices = null!;

    [OneTimeSetUp]
    public void SetUp()
    {
        _embedder = EmbeddingTestSupport.CreateEmbedder();
        // Palette colours only, so the GIF holds exactly the same pixels as the lossless formats.
        using var scene = TestImages.DrawScene(300, 200);
        (_picture, _pictureIndices) = TestImages.Quantize(scene);
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        _embedder.Dispose();
        _picture.Dispose();
    }

    [TestCaseSource(nameof(AllFormats))]
    public void SniffingRecognisesTheFormatFromContent(ImageFormat format)
    {
        Assert.That(ImageFormatSniffer.Detect(EncodeAs(format)), Is.EqualTo(format));
    }

    [TestCase(new byte[0], TestName = "Empty")]
    [TestCase(new byte[] { 0xFF, 0xD8 }, TestName = "JpegSignatureCutShort")]
    [TestCase(new byte[] { (byte)'G', (byte)'I', (byte)'F', (byte)'8', (byte)'8', (byte)'a' }, TestName = "GifWithUnknownVersion")]
    [TestCase(new byte[] { (byte)'R', (byte)'I', (byte)'F', (byte)'F', 0, 0, 0, 0, (byte)'W', (byte)'A', (byte)'V', (byte)'E' }, TestName = "RiffWave")]
    [TestCase(new byte[] { (byte)'I', (byte)'I', 0x2A, 0x00, 8, 0, 0, 0 }, TestName = "Tiff")]
    [TestCase(new byte[] { (byte)'<', (byte)'s', (byte)'v', (byte)'g', (byte)'>' }, TestName = "Svg")]
    public void SniffingRejectsOtherContent(byte[] content)
    {
        Assert.That(ImageFormatSniffer.Detect(content), Is.Null);
    }

    [TestCase(ImageFormat.Png)]
    [TestCase(ImageFormat.Bmp)]
    [TestCase(ImageFormat.Gif)]
    public void LosslessFormatsGiveExactlyThePixelsOfPng(ImageFormat format)
    {
        var reference = Preprocess(EncodeAs(ImageFormat.Png));
        var tensor = Preprocess(EncodeAs(format));
        Assert.That(tensor, Is.EqualTo(reference));
    }

    [TestCase(ImageFormat.Jpeg)]
    [TestCase(ImageFormat.Webp)]
    public void LossyFormatsGiveNearlyThePixelsOfPng(ImageFormat format)
    {
        var reference = Preprocess(EncodeAs(ImageFormat.Png));
        var tensor = Preprocess(EncodeAs(format));

        // Quality 90 keeps the mean error near one 8-bit step; swapped channels or a shifted crop would be far off.
        var meanAbsoluteError = reference.Zip(tensor, (a, b) => Math.Abs(a - b)).Average();
        Assert.That(meanAbsoluteError, Is.LessThan(2.5 / 255));
    }

    [TestCaseSource(nameof(AllFormats))]
    public async Task EveryFormatEmbeds(ImageFormat format)
    {
        var embedding = await _embedder.EmbedOneAsync(EncodeAs(format));

        Assert.That(embedding, Has.Length.EqualTo(_embedder.Dimensions));
        Assert.That(EmbeddingTestSupport.Norm(embedding), Is.EqualTo(1).Within(1e-5));
    }

    [TestCaseSource(nameof(AllFormats))]
    public void EveryFormatCutInHalfIsRejectedAsTruncated(ImageFormat format)
    {
        var encoded = EncodeAs(format);
        var preprocessor = EmbeddingTestSupport.CreatePreprocessor();

        var result = preprocessor.Preprocess(encoded.AsMemory(0, encoded.Length / 2), new float[preprocessor.TensorLength]);

        Assert.That(result.RejectionReason, Is.EqualTo(ImageRejections.TruncatedOrCorrupt));
    }

    private byte[] EncodeAs(ImageFormat format) => format switch
    {
        ImageFormat.Jpeg => TestImages.Encode(_picture, SKEncodedImageFormat.Jpeg),
        ImageFormat.Png => TestImages.Encode(_picture, SKEncodedImageFormat.Png),
        ImageFormat.Webp => TestImages.Encode(_picture, SKEncodedImageFormat.Webp),
        ImageFormat.Bmp => TestImages.EncodeBmp(_picture),
        ImageFormat.Gif => TestImages.EncodeGif(_picture.Width, _picture.Height, _pictureIndices),
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    private static float[] Preprocess(byte[] encoded)
    {
        var preprocessor = EmbeddingTestSupport.CreatePreprocessor();
        var tensor = new float[preprocessor.TensorLength];
        var result = preprocessor.Preprocess(encoded, tensor);
        Assert.That(result.RejectionReason, Is.Null);
        return tensor;
    }
}
