using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Embedding;
using SkiaSharp;

namespace ReverseImageSearch.Tests.Embedding;

/// <summary>Batching, compaction around rejected images, concurrency and normalisation do not change the vectors.</summary>
public sealed class BatchTests
{
    private byte[][] _pictures = null!;

    [OneTimeSetUp]
    public void DrawPictures()
    {
        _pictures = [.. Enumerable.Range(0, 5).Select(variant =>
        {
            using var picture = TestImages.DrawScene(400 + (variant * 60), 300, variant);
            return TestImages.Encode(picture, variant % 2 == 0 ? SKEncodedImageFormat.Jpeg : SKEncodedImageFormat.Png);
        })];
    }

    [Test]
    public async Task BatchGivesTheSameVectorsAsSingleCalls()
    {
        // Batches of 2 over 7 inputs with rejections in between: several inference calls, some slots compacted.
        using var embedder = EmbeddingTestSupport.CreateEmbedder(maxBatchSize: 2);
        ReadOnlyMemory<byte>[] batch = [_pictures[0], new byte[] { 9, 9, 9 }, _pictures[1], _pictures[2], ReadOnlyMemory<byte>.Empty, _pictures[3], _pictures[4]];

        var batched = await embedder.EmbedAsync(batch);

        var singles = new List<EmbeddingResult>();
        foreach (var image in batch)
        {
            singles.Add((await embedder.EmbedAsync([image]))[0]);
        }

        Assert.Multiple(() =>
        {
            for (var i = 0; i < batch.Length; i++)
            {
                Assert.That(batched[i].RejectionReason, Is.EqualTo(singles[i].RejectionReason), $"input {i}");
                if (!singles[i].IsRejected)
                {
                    Assert.That(batched[i].Vector, Is.EqualTo(singles[i].Vector).Within(1e-5), $"input {i}");
                }
            }
        });
    }

    [Test]
    public async Task ConcurrentCallsGiveTheSameVectorsAsSequentialOnes()
    {
        using var embedder = EmbeddingTestSupport.CreateEmbedder(maxBatchSize: 3);
        var sequential = await embedder.EmbedAsync([.. _pictures.Select(p => (ReadOnlyMemory<byte>)p)]);

        var concurrent = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ =>
            Task.Run(() => embedder.EmbedAsync([.. _pictures.Select(p => (ReadOnlyMemory<byte>)p)]))));

        Assert.Multiple(() =>
        {
            foreach (var results in concurrent)
            {
                for (var i = 0; i < _pictures.Length; i++)
                {
                    Assert.That(results[i].Vector, Is.EqualTo(sequential[i].Vector).Within(1e-5));
                }
            }
        });
    }

    [Test]
    public async Task VectorsAreTheUnitLengthSquareRootsOfTheGrayscaleModelOutput()
    {
        using var product = EmbeddingTestSupport.CreateEmbedder();
        using var grayRaw = new OnnxImageEmbedder(
            new EmbedderOptions(EmbedderOptions.BundledModelPath, L2Normalize: false, Grayscale: true, PowerNormalize: false),
            NullLogger<OnnxImageEmbedder>.Instance);
        using var colourRaw = EmbeddingTestSupport.CreateRawModelEmbedder();
        var images = _pictures.Select(p => (ReadOnlyMemory<byte>)p).ToArray();

        var unit = await product.EmbedAsync(images);
        var raw = await grayRaw.EmbedAsync(images);
        var colour = await colourRaw.EmbedAsync(images);

        Assert.Multiple(() =>
        {
            for (var i = 0; i < images.Length; i++)
            {
                var rooted = raw[i].Vector!.Select(MathF.Sqrt).ToArray();
                Assert.That(EmbeddingTestSupport.Norm(unit[i].Vector!), Is.EqualTo(1).Within(1e-5));
                Assert.That(EmbeddingTestSupport.Norm(raw[i].Vector!), Is.GreaterThan(2), "the model's raw features are not unit length");
                Assert.That(EmbeddingTestSupport.Cosine(unit[i].Vector!, rooted), Is.EqualTo(1).Within(1e-6));
                Assert.That(EmbeddingTestSupport.Cosine(raw[i].Vector!, colour[i].Vector!), Is.LessThan(0.9999), "grayscale input differs from colour input");
            }
        });
    }

    [Test]
    public async Task ImageInsideALargerBufferEmbedsLikeTheImageAlone()
    {
        // Encoded bytes are lent to the decoder in place, so an offset into a shared buffer must be honoured.
        using var embedder = EmbeddingTestSupport.CreateEmbedder();
        var image = _pictures[0];
        var buffer = new byte[image.Length + 300];
        image.CopyTo(buffer, 100);

        var alone = await embedder.EmbedAsync([image]);
        var inside = await embedder.EmbedAsync([buffer.AsMemory(100, image.Length)]);

        Assert.That(inside[0].Vector, Is.EqualTo(alone[0].Vector).Within(1e-6));
    }

    [Test]
    public async Task EmptyInputGivesNoResults()
    {
        using var embedder = EmbeddingTestSupport.CreateEmbedder();
        Assert.That(await embedder.EmbedAsync([]), Is.Empty);
    }
}
