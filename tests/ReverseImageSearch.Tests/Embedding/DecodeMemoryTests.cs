using ReverseImageSearch.Core;
using ReverseImageSearch.Embedding;
using SkiaSharp;

namespace ReverseImageSearch.Tests.Embedding;

/// <summary>Decoded pixels in flight are bounded across every caller (issue 11, item 8).</summary>
public sealed class DecodeMemoryTests
{
    [Test]
    public async Task ADecodeWaitsWhileTheBudgetIsTakenAndRunsOnceItIsFree()
    {
        using var picture = TestImages.DrawScene(1200, 1000);
        var png = TestImages.Encode(picture, SKEncodedImageFormat.Png);
        var budget = new MemoryBudget(1200 * 1000);
        var preprocessor = new ImagePreprocessor(224, 224, maxImagePixels: 50_000_000, decodedPixels: budget);

        var held = await budget.AcquireAsync(1);
        var decode = Task.Run(() => preprocessor.Preprocess(png, new float[preprocessor.TensorLength]));
        await Task.Delay(500);
        Assert.That(decode.IsCompleted, Is.False, "1,200,000 pixels do not fit while one pixel of the budget is held");

        held.Dispose();
        var result = await decode.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(result.IsRejected, Is.False);
        Assert.That((result.DecodedWidth, result.DecodedHeight), Is.EqualTo((1200, 1000)));
        using var whole = await budget.AcquireAsync(budget.Capacity).WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Test]
    public async Task WaitersAreAdmittedInArrivalOrderAndALargeOneIsNotStarved()
    {
        var budget = new MemoryBudget(10);
        var first = await budget.AcquireAsync(6);
        var large = budget.AcquireAsync(10);
        var small = budget.AcquireAsync(1);
        await Task.Delay(100);
        Assert.That((large.IsCompleted, small.IsCompleted), Is.EqualTo((false, false)), "the small one queues behind the large one");

        first.Dispose();
        var largeLease = await large.WaitAsync(TimeSpan.FromSeconds(5));
        await Task.Delay(100);
        Assert.That(small.IsCompleted, Is.False);
        largeLease.Dispose();
        (await small.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
    }

    [Test]
    public async Task AWeightOverTheCapacityRunsAloneAndAWithdrawnWaiterFreesTheQueue()
    {
        var budget = new MemoryBudget(10);
        var oversize = await budget.AcquireAsync(1_000);
        using var cancel = new CancellationTokenSource();
        var withdrawn = budget.AcquireAsync(10, cancel.Token);
        var next = budget.AcquireAsync(1);
        await cancel.CancelAsync();
        Assert.That(async () => await withdrawn, Throws.InstanceOf<OperationCanceledException>());
        Assert.That(next.IsCompleted, Is.False, "the oversize lease still holds the whole budget");

        oversize.Dispose();
        (await next.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
    }
}
