using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Embedding;
using SkiaSharp;

namespace ReverseImageSearch.Tests.Embedding;

/// <summary>
/// MATCH_CROPS: an image being stored also gets the vectors of its views, each the vector the model gives that part of
/// the upright picture cropped out and embedded alone, in the same colour mode; queries stay one vector.
/// </summary>
public sealed class StoredViewsTests
{
    private static OnnxImageEmbedder CreateEmbedder(bool storeViews = true, bool grayscale = true, int maxBatchSize = 8) =>
        new(new EmbedderOptions(EmbedderOptions.BundledModelPath, MaxBatchSize: maxBatchSize, Grayscale: grayscale, StoreViews: storeViews),
            NullLogger<OnnxImageEmbedder>.Instance);

    private static byte[] Png(SKBitmap bitmap) => TestImages.Encode(bitmap, SKEncodedImageFormat.Png);

    private static byte[] CropPng(SKBitmap picture, SKRectI area)
    {
        using var crop = new SKBitmap(new SKImageInfo(area.Width, area.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        Assert.That(picture.ExtractSubset(crop, area), Is.True);
        return Png(crop);
    }

    private static async Task<EmbeddingResult> StoreAsync(OnnxImageEmbedder embedder, byte[] image)
    {
        var result = (await embedder.EmbedForIndexAsync([image]))[0];
        Assert.That(result.RejectionReason, Is.Null);
        return result;
    }

    private static float[] View(EmbeddingResult result, string name) => result.Views.Single(view => view.Name == name).Vector;

    [Test]
    public async Task AWidePictureStoresItsEndSquaresAsTheSquaresCroppedOutAndEmbeddedAlone()
    {
        using var embedder = CreateEmbedder();
        using var picture = TestImages.DrawScene(600, 300);

        var stored = await StoreAsync(embedder, Png(picture));
        var left = await embedder.EmbedOneAsync(CropPng(picture, SKRectI.Create(0, 0, 300, 300)));
        var right = await embedder.EmbedOneAsync(CropPng(picture, SKRectI.Create(300, 0, 300, 300)));

        Assert.Multiple(() =>
        {
            Assert.That(stored.Views.Select(view => view.Name), Is.EqualTo(new[] { ImageViews.StartSquare, ImageViews.EndSquare, ImageViews.CenterZoom }));
            Assert.That(EmbeddingTestSupport.Cosine(View(stored, ImageViews.StartSquare), left), Is.GreaterThan(0.99));
            Assert.That(EmbeddingTestSupport.Cosine(View(stored, ImageViews.EndSquare), right), Is.GreaterThan(0.99));
            // The two ends are different parts of the picture, and neither is the image's own (centre) vector.
            Assert.That(EmbeddingTestSupport.Cosine(View(stored, ImageViews.StartSquare), right), Is.LessThan(0.95));
            Assert.That(EmbeddingTestSupport.Cosine(stored.Vector!, left), Is.LessThan(0.97));
        });
    }

    [Test]
    public async Task ATallPicturesStartIsItsTopAndItsEndItsBottom()
    {
        using var embedder = CreateEmbedder();
        using var picture = TestImages.DrawScene(300, 600);

        var stored = await StoreAsync(embedder, Png(picture));
        var top = await embedder.EmbedOneAsync(CropPng(picture, SKRectI.Create(0, 0, 300, 300)));
        var bottom = await embedder.EmbedOneAsync(CropPng(picture, SKRectI.Create(0, 300, 300, 300)));

        Assert.Multiple(() =>
        {
            Assert.That(EmbeddingTestSupport.Cosine(View(stored, ImageViews.StartSquare), top), Is.GreaterThan(0.99));
            Assert.That(EmbeddingTestSupport.Cosine(View(stored, ImageViews.EndSquare), bottom), Is.GreaterThan(0.99));
            Assert.That(EmbeddingTestSupport.Cosine(View(stored, ImageViews.StartSquare), bottom), Is.LessThan(0.95));
        });
    }

    [Test]
    public async Task ViewsAreOfTheUprightPicture()
    {
        using var embedder = CreateEmbedder();
        using var upright = TestImages.DrawScene(600, 300);
        using var stored90 = TestImages.ToStoredPixels(upright, 6);
        var tagged = TestImages.WithExifOrientation(TestImages.Encode(stored90, SKEncodedImageFormat.Jpeg, 95), 6);

        var stored = await StoreAsync(embedder, tagged);
        var left = await embedder.EmbedOneAsync(CropPng(upright, SKRectI.Create(0, 0, 300, 300)));

        Assert.That(EmbeddingTestSupport.Cosine(View(stored, ImageViews.StartSquare), left), Is.GreaterThan(0.98));
    }

    [Test]
    public async Task ANearSquarePictureHasOnlyTheZoomTheCentreSquareAtSeventyPercent()
    {
        using var embedder = CreateEmbedder();
        // 1.2 : 1 is not wide enough for end squares (more than 1.25 : 1).
        using var picture = TestImages.DrawScene(480, 400);

        var stored = await StoreAsync(embedder, Png(picture));
        // The centre square is 400 x 400; at 70% of its side, 280 x 280 in the middle of the picture.
        var zoom = await embedder.EmbedOneAsync(CropPng(picture, SKRectI.Create(100, 60, 280, 280)));

        Assert.Multiple(() =>
        {
            Assert.That(stored.Views.Select(view => view.Name), Is.EqualTo(new[] { ImageViews.CenterZoom }));
            Assert.That(EmbeddingTestSupport.Cosine(View(stored, ImageViews.CenterZoom), zoom), Is.GreaterThan(0.99));
            Assert.That(EmbeddingTestSupport.Cosine(stored.Vector!, zoom), Is.LessThan(0.98));
        });
    }

    [Test]
    public async Task EveryViewIsFinishedAsTheImagesOwnVector()
    {
        using var embedder = CreateEmbedder();
        using var picture = TestImages.DrawScene(640, 360, variant: 2);

        var stored = await StoreAsync(embedder, Png(picture));

        Assert.Multiple(() =>
        {
            Assert.That(stored.Views, Has.Count.EqualTo(3));
            foreach (var view in stored.Views)
            {
                Assert.That(view.Vector, Has.Length.EqualTo(embedder.Dimensions), view.Name);
                Assert.That(EmbeddingTestSupport.Norm(view.Vector), Is.EqualTo(1).Within(1e-4), view.Name);
                Assert.That(view.Vector, Has.All.GreaterThanOrEqualTo(0), view.Name);
            }
        });
    }

    [Test]
    public async Task WithoutMatchCropsAStoredImageHasNoViews()
    {
        using var withViews = CreateEmbedder();
        using var without = CreateEmbedder(storeViews: false);
        using var picture = TestImages.DrawScene(600, 300);
        var image = Png(picture);

        var stored = await StoreAsync(without, image);
        var query = await without.EmbedOneAsync(image);
        var storedWithViews = await StoreAsync(withViews, image);

        Assert.Multiple(() =>
        {
            Assert.That(stored.Views, Is.Empty);
            Assert.That(stored.Vector, Is.EqualTo(query).Within(1e-6));
            // The image's own vector does not depend on its views being stored.
            Assert.That(storedWithViews.Vector, Is.EqualTo(query).Within(1e-5));
        });
    }

    [Test]
    public async Task AStoredJpegsOwnVectorIsTheQuerysVectorOfTheSameFile()
    {
        // A JPEG decodes at a reduced scale: the views need a larger one (the zoom must be reduced, not enlarged), but the
        // image's own vector must be the one a query of the same file gets, with or without MATCH_CROPS.
        using var embedder = CreateEmbedder();
        using var picture = TestImages.DrawScene(1200, 600, variant: 4);
        var jpeg = TestImages.Encode(picture, SKEncodedImageFormat.Jpeg, 85);

        var stored = await StoreAsync(embedder, jpeg);
        var query = await embedder.EmbedOneAsync(jpeg);

        Assert.Multiple(() =>
        {
            Assert.That(stored.Views, Has.Count.EqualTo(3));
            Assert.That(stored.Vector, Is.EqualTo(query).Within(1e-5));
        });
    }

    [Test]
    public async Task AQueryIsNeverViewed()
    {
        using var embedder = CreateEmbedder();
        using var picture = TestImages.DrawScene(600, 300);

        var results = await embedder.EmbedAsync([Png(picture)]);

        Assert.Multiple(() =>
        {
            Assert.That(results[0].Vector, Is.Not.Null);
            Assert.That(results[0].Views, Is.Empty);
        });
    }

    [Test]
    public async Task ABatchWithRejectedImagesGivesEachImageItsOwnViews()
    {
        // Batches of 8 inferences take 2 images a round: rounds with rejections, near-square and wide pictures mixed.
        using var embedder = CreateEmbedder(maxBatchSize: 8);
        byte[][] pictures = [.. new[] { (600, 300), (400, 380), (300, 700), (500, 450), (800, 320) }.Select((size, variant) =>
        {
            using var picture = TestImages.DrawScene(size.Item1, size.Item2, variant);
            return Png(picture);
        })];
        ReadOnlyMemory<byte>[] batch = [pictures[0], new byte[] { 1, 2, 3 }, pictures[1], pictures[2], ReadOnlyMemory<byte>.Empty, pictures[3], pictures[4]];

        var batched = await embedder.EmbedForIndexAsync(batch);

        var singles = new List<EmbeddingResult>();
        foreach (var image in batch)
        {
            singles.Add((await embedder.EmbedForIndexAsync([image]))[0]);
        }

        Assert.Multiple(() =>
        {
            for (var i = 0; i < batch.Length; i++)
            {
                Assert.That(batched[i].RejectionReason, Is.EqualTo(singles[i].RejectionReason), $"input {i}");
                if (singles[i].IsRejected)
                {
                    Assert.That(batched[i].Views, Is.Empty, $"input {i}");
                    continue;
                }

                Assert.That(batched[i].Vector, Is.EqualTo(singles[i].Vector).Within(1e-5), $"input {i}");
                Assert.That(batched[i].Views.Select(view => view.Name), Is.EqualTo(singles[i].Views.Select(view => view.Name)), $"input {i}");
                for (var v = 0; v < singles[i].Views.Count; v++)
                {
                    Assert.That(batched[i].Views[v].Vector, Is.EqualTo(singles[i].Views[v].Vector).Within(1e-5), $"input {i} view {v}");
                }
            }

            Assert.That(batched.Count(result => result.Views.Count == 3), Is.EqualTo(3));
            Assert.That(batched.Count(result => result.Views.Count == 1), Is.EqualTo(2));
        });
    }

    [Test]
    public async Task ARejectedImageIsStillRejectedWithoutViews()
    {
        using var embedder = CreateEmbedder();

        var result = (await embedder.EmbedForIndexAsync([new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0 }]))[0];

        Assert.Multiple(() =>
        {
            Assert.That(result.IsRejected, Is.True);
            Assert.That(result.RejectionReason, Is.Not.Null);
            Assert.That(result.Views, Is.Empty);
        });
    }

    [TestCase(true)]
    [TestCase(false)]
    public async Task ViewsAreEmbeddedInTheImagesColourMode(bool matchColor)
    {
        using var embedder = CreateEmbedder(grayscale: !matchColor);
        using var otherMode = CreateEmbedder(grayscale: matchColor);
        using var picture = TestImages.DrawScene(600, 300, variant: 1);
        var left = CropPng(picture, SKRectI.Create(0, 0, 300, 300));

        var start = View(await StoreAsync(embedder, Png(picture)), ImageViews.StartSquare);
        var sameMode = EmbeddingTestSupport.Cosine(start, await embedder.EmbedOneAsync(left));
        var inTheOtherMode = EmbeddingTestSupport.Cosine(start, await otherMode.EmbedOneAsync(left));

        Assert.Multiple(() =>
        {
            Assert.That(sameMode, Is.GreaterThan(0.99));
            Assert.That(inTheOtherMode, Is.LessThan(sameMode - 0.02));
        });
    }
}
