using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Local.Storage;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>
/// An upload whose event is handled before the install task has recorded its backfill finds no index and starts the
/// one that creates it. With DO_BACKFILL=true that start must be the install's backfill of every image already in the
/// bucket: the install task then finds it under way and resumes it. (The fault suite can meet this: an index process
/// killed before its install task ran leaves it in the queue beside the events of racing changes, and the restarted
/// process delivers them together.)
/// </summary>
[Parallelizable(ParallelScope.None)]
public class FirstUploadRaceTests
{
    private static readonly TaskDelivery Install = new(JsonSerializer.SerializeToElement(new { }), "install-task", 0);

    [Test]
    public async Task AnUploadHandledBeforeTheInstallTaskLeavesEveryImageOfTheBucketIndexed()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 6).StartAsync(run: false);
        // The install step: the images there now are the backfill's; the watcher announces only later changes.
        await stack.Services.GetRequiredService<LocalBucketWatcher>().BaselineAsync();
        const string uploaded = "uploaded-during-install.jpg";
        stack.AddImage(uploaded, LocalStackHarness.SampleBytes(LocalStackHarness.SampleNames[20]));
        var stored = await stack.Services.GetRequiredService<LocalObjectStore>().GetMetadataAsync(stack.Options.ImageBucket, uploaded)
            ?? throw new InvalidOperationException(uploaded + " does not exist");

        // The upload's event first, then the install task.
        await stack.Services.GetRequiredService<StreamUpdateDatapoint>().HandleAsync(
            new StorageObjectEvent(StorageEventKind.Finalized, stored.Bucket, stored.Name, stored.ContentType, stored.Size, stored.Md5Hash, stored.Generation, stored.Metageneration),
            CancellationToken.None);
        await stack.Services.GetRequiredService<BackfillTrigger>().HandleAsync(Install, CancellationToken.None);

        await stack.RestartAsync(); // Now the queue delivers what both left.
        await stack.WaitUntilDeployedAsync();
        await stack.WaitUntilQuietAsync();

        var run = await stack.State.ReadBackfillRunAsync(CancellationToken.None);
        Assert.That(run?.TotalLength, Is.EqualTo(7), "one backfill of the bucket as it was, the upload included");
        foreach (var name in LocalStackHarness.SampleNames.Take(6))
        {
            Assert.That(await stack.NearestAsync(LocalStackHarness.SampleBytes(name)), Is.EqualTo(name), name + " was in the bucket at install");
        }

        Assert.That(await stack.NearestAsync(LocalStackHarness.SampleBytes(LocalStackHarness.SampleNames[20])), Is.EqualTo(uploaded));
    }
}
