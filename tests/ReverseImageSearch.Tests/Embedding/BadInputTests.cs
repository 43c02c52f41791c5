using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Embedding;
using SkiaSharp;

namespace ReverseImageSearch.Tests.Embedding;

/// <summary>Inputs that are not usable images are rejected with their reason, never with an exception.</summary>
public sealed class BadInputTests
{
    private OnnxImageEmbedder _embedder = null!;
    private byte[] _validJpeg = null!;

    [OneTimeSetUp]
    public void SetUp()
    {
        _embedder = EmbeddingTestSupport.CreateEmbedder();
        using var picture = TestImages.DrawScene(640, 480);
        _validJpeg = TestImages.Encode(picture, SKEncodedImageFormat.Jpeg);
    }

    [OneTimeTearDown]
    public void TearDown() => _embedder.Dispose();

    [Test]
    public async Task BadInputsAreRejectedWhileValidImagesInTheSameBatchEmbed()
    {
        var random = new Random(20240611);
        var randomBytes = new byte[4096];
        random.NextBytes(randomBytes);
        var jpegSignatureThenNoise = new byte[4096];
        random.NextBytes(jpegSignatureThenNoise);
        jpegSignatureThenNoise[0] = 0xFF;
        jpegSignatureThenNoise[1] = 0xD8;
        jpegSignatureThenNoise[2] = 0xFF;
        var garbage = new byte[600];
        random.NextBytes(garbage);
        var corruptPng = TestImages.BuildPng(("IHDR", TestImages.PngHeader(64, 64)), ("IDAT", garbage), ("IEND", []));
        // A decompression bomb's header: the claimed size must be refused before any pixel is allocated.
        var bombPng = TestImages.BuildPng(("IHDR", TestImages.PngHeader(50_000, 50_000)), ("IDAT", []), ("IEND", []));

        (string Name, byte[] Bytes, string? Reason)[] inputs =
        [
            ("empty", [], ImageRejections.EmptyFile),
            ("valid before", _validJpeg, null),
            ("random bytes", randomBytes, ImageRejections.UnsupportedFormat),
            ("jpeg signature then noise", jpegSignatureThenNoise, ImageRejections.TruncatedOrCorrupt),
            ("truncated jpeg", _validJpeg[..(_validJpeg.Length / 2)], ImageRejections.TruncatedOrCorrupt),
            ("corrupt png", corruptPng, ImageRejections.TruncatedOrCorrupt),
            ("50000 x 50000 png", bombPng, ImageRejections.TooManyPixels(50_000, 50_000, 50_000_000)),
            ("valid after", _validJpeg, null),
        ];

        var results = await _embedder.EmbedAsync([.. inputs.Select(input => (ReadOnlyMemory<byte>)input.Bytes)]);

        var alone = await _embedder.EmbedOneAsync(_validJpeg);
        Assert.That(results, Has.Count.EqualTo(inputs.Length));
        Assert.Multiple(() =>
        {
            for (var i = 0; i < inputs.Length; i++)
            {
                Assert.That(results[i].RejectionReason, Is.EqualTo(inputs[i].Reason), inputs[i].Name);
                if (inputs[i].Reason is null)
                {
                    Assert.That(results[i].Vector, Is.EqualTo(alone).Within(1e-5), inputs[i].Name);
                }
            }
        });
    }

    [Test]
    public void PixelLimitIsCheckedFromTheHeader()
    {
        var preprocessor = new ImagePreprocessor(224, 224, maxImagePixels: 640 * 480 - 1);
        var tensor = new float[preprocessor.TensorLength];

        var result = preprocessor.Preprocess(_validJpeg, tensor);

        Assert.That(result.RejectionReason, Is.EqualTo(ImageRejections.TooManyPixels(640, 480, (640 * 480) - 1)));
        Assert.That(result.RejectionReason, Is.EqualTo("image is 640 x 480 pixels, more than the limit of 307199"));
    }

    [Test]
    public async Task EmbedderKeepsWorkingAfterRejections()
    {
        var before = await _embedder.EmbedOneAsync(_validJpeg);
        for (var round = 0; round < 3; round++)
        {
            var rejected = await _embedder.EmbedAsync([_validJpeg.AsMemory(0, _validJpeg.Length / 3), new byte[] { 1, 2, 3 }]);
            Assert.That(rejected.All(r => r.IsRejected), Is.True);
        }

        Assert.That(await _embedder.EmbedOneAsync(_validJpeg), Is.EqualTo(before).Within(1e-6));
    }
}
