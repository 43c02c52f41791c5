using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Tests.Core;

public sealed class ImageViewsTests
{
    [Test]
    public void AViewIdNamesItsImageAndNoImageIdIsAView()
    {
        var id = ImageViews.Id("a/b.jpg", ImageViews.CenterZoom);
        Assert.That(ImageViews.ImageOf(id), Is.EqualTo("a/b.jpg"));
        Assert.That(ImageViews.IsView(id), Is.True);
        Assert.That(ImageViews.IsView("a/b.jpg"), Is.False);
        Assert.That(ImageViews.ImageOf("a/b.jpg"), Is.EqualTo("a/b.jpg"));
        Assert.That(ImageViews.AllIds("a/b.jpg"), Is.EquivalentTo(new[] { "a/b.jpg" }.Concat(ImageViews.Names.Select(n => ImageViews.Id("a/b.jpg", n)))));
    }

    [Test]
    public void BestPerImageAnswersEachImageOnceUnderItsIdWithItsNearestDatapoint()
    {
        Neighbor[] nearestFirst =
        [
            new(ImageViews.Id("a.jpg", ImageViews.EndSquare), "a.jpg", 0.1),
            new("b.jpg", "b.jpg", 0.2),
            new("a.jpg", "a.jpg", 0.3),
            new(ImageViews.Id("b.jpg", ImageViews.CenterZoom), "b.jpg", 0.4),
            new(ImageViews.Id("c.jpg", ImageViews.CenterZoom), "c.jpg", 0.5),
            new("d.jpg", null, 0.6),
        ];

        Assert.That(
            ImageViews.BestPerImage(nearestFirst, 3),
            Is.EqualTo(new Neighbor[] { new("a.jpg", "a.jpg", 0.1), new("b.jpg", "b.jpg", 0.2), new("c.jpg", "c.jpg", 0.5) }));
        Assert.That(ImageViews.BestPerImage(nearestFirst, 10).Select(n => n.DatapointId), Is.EqualTo(new[] { "a.jpg", "b.jpg", "c.jpg", "d.jpg" }));
        Assert.That(ImageViews.BestPerImage(nearestFirst, 0), Is.Empty);
    }
}
