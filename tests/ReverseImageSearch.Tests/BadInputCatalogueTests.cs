using System.Buffers.Binary;
using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Embedding;
using ReverseImageSearch.Local.Storage;
using ReverseImageSearch.Tests.Embedding;
using ReverseImageSearch.Tests.Local.Fakes;
using SkiaSharp;

namespace ReverseImageSearch.Tests;

/// <summary>tests/BAD_INPUTS.md: each row names its own test, and the rows no other test covers are tested here.</summary>
public sealed partial class BadInputCatalogueTests
{
    private OnnxImageEmbedder _embedder = null!;

    [OneTimeSetUp]
    public void LoadModel() => _embedder = EmbeddingTestSupport.CreateEmbedder();

    [OneTimeTearDown]
    public void UnloadModel() => _embedder.Dispose();

    [Test]
    public void EveryRowNamesItsOwnTest()
    {
        var rows = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, "tests", "BAD_INPUTS.md"))
            .Select(line => RowPattern().Match(line)).Where(match => match.Success)
            .Select(match => (Number: match.Groups["number"].Value, Test: match.Groups["test"].Value)).ToList();
        var tests = typeof(BadInputCatalogueTests).Assembly.GetTypes()
            .SelectMany(type => type.GetMethods().Where(IsTest).Select(method => $"{type.Name}.{method.Name}"))
            .ToHashSet(StringComparer.Ordinal);

        Assert.That(rows, Has.Count.GreaterThanOrEqualTo(28));
        Assert.Multiple(() =>
        {
            foreach (var (number, test) in rows)
            {
                Assert.That(tests, Does.Contain(test), $"row {number} names no test");
            }

            Assert.That(rows.Select(row => row.Test), Is.Unique, "a test may back one row only");
        });
    }

    [Test]
    public async Task UnicodeAndOddNamesRoundTripThroughTheFolderBucket()
    {
        using var temp = new TempDirectory();
        var store = new LocalObjectStore(new Dictionary<string, string> { ["images"] = temp.Sub("images") }, temp.Sub("buckets"), NullLogger<LocalObjectStore>.Instance);
        string[] names =
        [
            "fotos/café.jpg", "fotos/cafe\u0301 (NFD).jpg", "日本語/写真.png", "emoji 📷/🐈.gif", "spaces  in  name .jpg",
            "query?a=1&b=2#frag.jpg", "100%25 done;semi'quote\".jpg", "trailing-dot..jpg",
        ];
        foreach (var name in names)
        {
            await store.WriteAsync("images", name, Encoding.UTF8.GetBytes(name), "image/jpeg");
        }

        var listed = new List<string>();
        await foreach (var stored in store.ListAsync("images", prefix: null))
        {
            listed.Add(stored.Name);
        }

        Assert.That(listed, Is.EquivalentTo(names));
        foreach (var name in names)
        {
            Assert.That((await store.GetMetadataAsync("images", name))?.Size, Is.EqualTo(Encoding.UTF8.GetByteCount(name)), name);
            Assert.That(Encoding.UTF8.GetString(await store.ReadAsync("images", name)), Is.EqualTo(name));
        }
    }

    [Test]
    public async Task ANonImageWithAnImageExtensionIsRejectedAsUnsupported()
    {
        using var temp = new TempDirectory();
        var notes = Path.Combine(temp.Path, "notes.jpg");
        await File.WriteAllTextAsync(notes, "shopping list: milk, eggs\n");
        var results = await _embedder.EmbedAsync([await File.ReadAllBytesAsync(notes)]);
        Assert.That(results[0].RejectionReason, Is.EqualTo(ImageRejections.UnsupportedFormat));
    }

    [Test]
    public async Task CmykJpegEmbedsLikeItsRgbSource()
    {
        // fixtures/cmyk.jpg is PIL's CMYK conversion of fixtures/cmyk-source.png (Adobe marker, inverted CMYK).
        var cmyk = await _embedder.EmbedOneAsync(await File.ReadAllBytesAsync(Fixture("cmyk.jpg")));
        var rgb = await _embedder.EmbedOneAsync(await File.ReadAllBytesAsync(Fixture("cmyk-source.png")));
        Assert.That(EmbeddingTestSupport.Cosine(cmyk, rgb), Is.GreaterThan(0.98));
    }

    [Test]
    public async Task SixteenBitPngEmbedsLikeItsEightBitVersion()
    {
        using var picture = TestImages.DrawScene(320, 240);
        var eightBit = await _embedder.EmbedOneAsync(TestImages.Encode(picture, SKEncodedImageFormat.Png));
        var sixteenBit = await _embedder.EmbedOneAsync(SixteenBitPng(picture));
        Assert.That(EmbeddingTestSupport.Cosine(sixteenBit, eightBit), Is.GreaterThan(0.999));
    }

    [Test]
    public async Task AnimatedGifEmbedsItsFirstFrame()
    {
        using var first = TestImages.DrawScene(160, 120, variant: 0);
        using var second = TestImages.DrawScene(160, 120, variant: 3);
        var (_, firstIndices) = TestImages.Quantize(first);
        var (_, secondIndices) = TestImages.Quantize(second);

        var animated = await _embedder.EmbedOneAsync(TestImages.EncodeGif(160, 120, firstIndices, secondIndices));
        var firstAlone = await _embedder.EmbedOneAsync(TestImages.EncodeGif(160, 120, firstIndices));
        var secondAlone = await _embedder.EmbedOneAsync(TestImages.EncodeGif(160, 120, secondIndices));
        Assert.That(animated, Is.EqualTo(firstAlone).Within(1e-6));
        Assert.That(EmbeddingTestSupport.Cosine(firstAlone, secondAlone), Is.LessThan(0.999), "the frames differ, so the test could tell");
    }

    private static string Fixture(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "Embedding", "fixtures", name);

    // RGB, 16 bits per channel: each 8-bit value v becomes v * 257, so it decodes back to exactly v.
    private static byte[] SixteenBitPng(SKBitmap picture)
    {
        using var raw = new MemoryStream();
        using (var zlib = new ZLibStream(raw, CompressionLevel.Fastest, leaveOpen: true))
        {
            var row = new byte[1 + (picture.Width * 6)];
            for (var y = 0; y < picture.Height; y++)
            {
                for (var x = 0; x < picture.Width; x++)
                {
                    var colour = picture.GetPixel(x, y);
                    BinaryPrimitives.WriteUInt16BigEndian(row.AsSpan(1 + (x * 6)), (ushort)(colour.Red * 257));
                    BinaryPrimitives.WriteUInt16BigEndian(row.AsSpan(3 + (x * 6)), (ushort)(colour.Green * 257));
                    BinaryPrimitives.WriteUInt16BigEndian(row.AsSpan(5 + (x * 6)), (ushort)(colour.Blue * 257));
                }

                zlib.Write(row);
            }
        }

        var header = TestImages.PngHeader(picture.Width, picture.Height);
        header[8] = 16;
        return TestImages.BuildPng(("IHDR", header), ("IDAT", raw.ToArray()), ("IEND", []));
    }

    private static bool IsTest(MethodInfo method) =>
        method.GetCustomAttributes().Any(attribute => attribute is TestAttribute or TestCaseAttribute or TestCaseSourceAttribute);

    [GeneratedRegex(@"^\| (?<number>\d+) \|.*\| `(?<test>\w+\.\w+)` \|$")]
    private static partial Regex RowPattern();
}
