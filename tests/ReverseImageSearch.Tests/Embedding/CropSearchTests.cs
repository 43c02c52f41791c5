using ReverseImageSearch.Tests.Functions;
using SkiaSharp;

namespace ReverseImageSearch.Tests.Embedding;

/// <summary>
/// MATCH_CROPS through the whole local stack with the real model: the installation's embedder stores the views, so a
/// crop keeping the end of a wide picture, which its centre square misses, finds the picture at the crop's own vector.
/// </summary>
[Parallelizable(ParallelScope.None)]
public sealed class CropSearchTests
{
    private const string Wide = "wide.png";

    [TestCase(true)]
    [TestCase(false)]
    public async Task ACropOfAWidePicturesEndFindsItAtTheCropsOwnVectorOnlyWithMatchCrops(bool matchCrops)
    {
        using var picture = TestImages.DrawScene(900, 400, variant: 3);
        using var leftSquare = new SKBitmap(new SKImageInfo(400, 400, SKColorType.Rgba8888, SKAlphaType.Opaque));
        Assert.That(picture.ExtractSubset(leftSquare, SKRectI.Create(0, 0, 400, 400)), Is.True);
        await using var stack = LocalStackHarness.Create(imageCount: 3, new Dictionary<string, string?> { ["MATCH_CROPS"] = matchCrops ? "true" : "false" });
        stack.AddImage(Wide, TestImages.Encode(picture, SKEncodedImageFormat.Png));
        await stack.StartAsync();
        await stack.WaitUntilDeployedAsync();

        var answer = (await stack.QueryAsync(4, TestImages.Encode(leftSquare, SKEncodedImageFormat.Png)))[0];

        Assert.Multiple(() =>
        {
            // One entry per image, under its own id, whatever datapoint answered.
            Assert.That(answer.Select(neighbor => neighbor.Id), Is.Unique);
            Assert.That(answer.Select(neighbor => neighbor.Id), Has.None.Contains("\n"));
            // DOT_PRODUCT_DISTANCE: 1 for an identical vector. The start square's view is the crop's vector; the picture's
            // own vector, of its centre square, only overlaps it (without views another picture answers first).
            var wide = answer.Single(neighbor => neighbor.Id == Wide);
            Assert.That(wide.Distance, matchCrops ? Is.GreaterThan(0.99) : Is.LessThan(0.97));
            if (matchCrops)
            {
                Assert.That(answer[0].Id, Is.EqualTo(Wide));
            }
        });
    }
}
