using SkiaSharp;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>
/// MATCH_CROPS through the whole local stack with the real model: stored wide pictures are three different scenes side
/// by side, and a query is one of their end scenes cropped out. The image's own vector sees only its middle scene, so
/// without views the crop does not find its picture; with views the picture's end square answers for it, once, under
/// the picture's name. Both local engines (Vertex-style and Firestore-style).
/// </summary>
[Parallelizable(ParallelScope.None)]
public sealed class CroppedCopiesTests
{
    private const int Pictures = 4;

    [TestCase("vertex")]
    [TestCase("firestore")]
    public async Task AnEndSquareCroppedOutOfAWidePictureFindsItOnlyWithMatchCrops(string backend)
    {
        var (withViews, crops) = await NearestOfCropsAsync(backend, matchCrops: true);
        var (withoutViews, _) = await NearestOfCropsAsync(backend, matchCrops: false);

        Assert.Multiple(() =>
        {
            for (var i = 0; i < crops.Count; i++)
            {
                var (crop, picture) = crops[i];
                Assert.That(withViews[i].Select(n => n.Id).First(), Is.EqualTo(picture), $"MATCH_CROPS=true: {crop} finds its picture");
                Assert.That(withViews[i].Select(n => n.Id), Is.Unique, "an image answers once, whatever number of its vectors are near");
                Assert.That(withViews[i].Select(n => n.Id), Has.None.Contains("\n"), "a view never answers under its own id");
                Assert.That(withViews[i].Select(n => n.Id), Is.EquivalentTo(Enumerable.Range(0, Pictures).Select(Name)), "every picture is among the answers");
            }

            // Without views the picture is scored by its middle scene only. The generated scenes are alike (cosine 0.7-0.97
            // between different ones), so the test asks for what a view gives: the crop is its picture's end square, to
            // the model's rounding, which the centre square's vector never is.
            for (var i = 0; i < crops.Count; i++)
            {
                var (crop, picture) = crops[i];
                var near = withViews[i].Single(n => n.Id == picture).Distance;
                var far = withoutViews[i].Single(n => n.Id == picture).Distance;
                TestContext.Out.WriteLine($"{crop}: {near:F3} with views, {far:F3} without");
                Assert.That(near, Is.GreaterThan(0.995), $"MATCH_CROPS=true: {crop} is its picture's end square (dot product of unit vectors)");
                Assert.That(far, Is.LessThan(0.99), $"MATCH_CROPS=false: {crop} is not its picture's centre square");
            }
        });
    }

    private static async Task<(IReadOnlyList<IReadOnlyList<(string Id, double Distance)>> Answers, IReadOnlyList<(string Crop, string Picture)> Crops)> NearestOfCropsAsync(
        string backend, bool matchCrops)
    {
        await using var stack = LocalStackHarness.Create(imageCount: 0, new Dictionary<string, string?>
        {
            ["INDEX_BACKEND"] = backend,
            ["MATCH_CROPS"] = matchCrops ? "true" : "false",
        });
        var scenes = LocalStackHarness.SampleNames.Take(3 * Pictures).Select(n => SKBitmap.Decode(LocalStackHarness.SampleBytes(n))).ToArray();
        try
        {
            var queries = new List<byte[]>();
            var crops = new List<(string, string)>();
            for (var p = 0; p < Pictures; p++)
            {
                var (start, middle, end) = (scenes[3 * p], scenes[(3 * p) + 1], scenes[(3 * p) + 2]);
                stack.AddImage(Name(p), SideBySide(start, middle, end));
                queries.Add(Square(start));
                crops.Add(($"the start scene of {Name(p)}", Name(p)));
                queries.Add(Square(end));
                crops.Add(($"the end scene of {Name(p)}", Name(p)));
            }

            await stack.StartAsync();
            await stack.WaitUntilDeployedAsync();
            await LocalStackHarness.WaitUntilAsync(
                async () => (await stack.QueryAsync(Pictures, queries[0]))[0].Count == Pictures, TimeSpan.FromSeconds(90), "every picture to be indexed");
            await stack.WaitUntilQuietAsync();
            return (await stack.QueryAsync(Pictures, [.. queries]), crops);
        }
        finally
        {
            foreach (var scene in scenes)
            {
                scene.Dispose();
            }
        }
    }

    private static string Name(int picture) => $"wide/picture-{picture}.png";

    /// <summary>Three scenes, each drawn into a square of the same side, left to right: a picture three times as wide as high.</summary>
    private static byte[] SideBySide(SKBitmap start, SKBitmap middle, SKBitmap end)
    {
        const int side = 256;
        using var surface = SKSurface.Create(new SKImageInfo(3 * side, side));
        using var paint = new SKPaint();
        var x = 0;
        foreach (var scene in new[] { start, middle, end })
        {
            using var image = SKImage.FromBitmap(scene);
            surface.Canvas.DrawImage(image, new SKRect(x, 0, x + side, side), new SKSamplingOptions(SKFilterMode.Linear), paint);
            x += side;
        }

        using var snapshot = surface.Snapshot();
        using var png = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }

    /// <summary>The scene as it sits in the wide picture: the crop a user would make of that end.</summary>
    private static byte[] Square(SKBitmap scene)
    {
        const int side = 256;
        using var surface = SKSurface.Create(new SKImageInfo(side, side));
        using var image = SKImage.FromBitmap(scene);
        using var paint = new SKPaint();
        surface.Canvas.DrawImage(image, new SKRect(0, 0, side, side), new SKSamplingOptions(SKFilterMode.Linear), paint);
        using var snapshot = surface.Snapshot();
        using var png = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }
}
