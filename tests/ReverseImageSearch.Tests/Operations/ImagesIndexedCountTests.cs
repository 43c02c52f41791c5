using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Local.Storage;
using ReverseImageSearch.Tests.Functions;

namespace ReverseImageSearch.Tests.Operations;

/// <summary>
/// ris.images.indexed counts an image's content once, however many writers write it: a writer that writes an image
/// again because another writer raced it (DatapointSync's rule that orders writes to the index) adds no image.
/// </summary>
[Parallelizable(ParallelScope.None)]
public sealed class ImagesIndexedCountTests
{
    /// <summary>Set in the test's own flow only: measurements of other tests running meanwhile are not counted.</summary>
    private static readonly AsyncLocal<bool> Measuring = new();

    [Test]
    public async Task AnImageWrittenAgainAfterARacingWriterIsCountedOnce()
    {
        var stack = LocalStackHarness.Create(imageCount: 3, new Dictionary<string, string?> { ["INDEX_BACKEND"] = "firestore" });
        await using var _ = stack;
        await stack.StartAsync();
        await stack.WaitUntilDeployedAsync();
        await stack.WaitUntilQuietAsync();
        await stack.StopAsync();
        await stack.StartAsync(run: false); // Only the handlers this test calls run from here on.

        var name = LocalStackHarness.SampleNames[0];
        var writtenByTheChunk = await stack.State.GetDatapointRecordAsync(name, CancellationToken.None);
        Assert.That(writtenByTheChunk?.Status, Is.EqualTo(DatapointStatus.Indexed), "the backfill indexed it");
        stack.AddImage(name, LocalStackHarness.SampleBytes(LocalStackHarness.SampleNames[20]));
        var stored = await stack.Services.GetRequiredService<LocalObjectStore>().GetMetadataAsync(stack.Options.ImageBucket, name)
            ?? throw new InvalidOperationException(name + " does not exist");
        var finalized = new StorageObjectEvent(
            StorageEventKind.Finalized, stored.Bucket, stored.Name, stored.ContentType, stored.Size, stored.Md5Hash, stored.Generation, stored.Metageneration);

        long indexed = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument == Telemetry.ImagesIndexed)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) =>
        {
            if (Measuring.Value)
            {
                Interlocked.Add(ref indexed, value);
            }
        });
        listener.Start();
        Measuring.Value = true;

        // The overwrite's event: its handler embeds and writes the new content.
        await stack.Services.GetRequiredService<StreamUpdateDatapoint>().HandleAsync(finalized, CancellationToken.None);
        // The chunk that wrote the older content looks again (INDEX_BACKEND=firestore), finds the image changed and writes it
        // again from what is there now: the same content, in case the event's write had come before the chunk's.
        await stack.Services.GetRequiredService<DatapointSync>().RecheckAsync(
            stack.State.Paths.VectorCollection, name, writtenByTheChunk!.Generation, CancellationToken.None);
        Measuring.Value = false;

        Assert.That((await stack.State.GetDatapointRecordAsync(name, CancellationToken.None))?.Md5Hash, Is.EqualTo(stored.Md5Hash));
        Assert.That(Interlocked.Read(ref indexed), Is.EqualTo(1), "one new content of one image: indexed once, though written twice");
    }
}
