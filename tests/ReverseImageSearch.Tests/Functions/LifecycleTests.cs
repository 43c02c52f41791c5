using ReverseImageSearch.Core.Coordination;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>The whole local lifecycle: backfill, index built, deployed, queried, kept current, restarted.</summary>
[Parallelizable(ParallelScope.None)]
public class LifecycleTests
{
    [Test]
    public async Task BackfillBuildsAndDeploysTheIndexAndEveryImageFindsItselfFirst()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 12).StartAsync();
        var deployed = await stack.WaitUntilDeployedAsync();

        var tasks = await stack.TasksDocumentAsync();
        Assert.That(tasks!.GetInt64("totalLength"), Is.EqualTo(12));
        Assert.That(tasks.GetInt64("processedLength"), Is.EqualTo(12));
        Assert.That(tasks.GetString("status"), Is.EqualTo("DONE"));

        // BATCH_SIZE 5: three chunks, each DONE with its datapoints file.
        var paths = stack.State.Paths;
        for (var n = 1; n <= 3; n++)
        {
            var chunk = await stack.Documents.GetAsync(paths.Enqueue(paths.BackfillTaskId(n)));
            Assert.That(chunk!.GetString("status"), Is.EqualTo("DONE"), $"chunk {n}");
            Assert.That(chunk.GetString("filePath"), Is.EqualTo($"gs://{stack.Options.EmbeddingsBucket}/datapoints/{paths.BackfillTaskId(n)}.json"));
        }

        var metadata = await stack.MetadataDocumentAsync();
        Assert.That(metadata!.GetString("status"), Is.EqualTo("INDEX_DEPLOYED"));
        Assert.That(metadata.GetInt64("outputShape"), Is.EqualTo(1280));
        Assert.That(metadata["operation"], Is.Null, "the operation is dropped once deployed");
        Assert.That(deployed.Index, Does.StartWith($"projects/{stack.Options.ProjectId}/locations/{stack.Options.Location}/indexes/"));

        foreach (var name in LocalStackHarness.SampleNames.Take(12))
        {
            var found = (await stack.QueryAsync(3, LocalStackHarness.SampleBytes(name)))[0];
            Assert.That(found[0].Id, Is.EqualTo(name));
            Assert.That(found[0].Distance, Is.EqualTo(1.0).Within(1e-4), "dot product of a unit vector with itself");
            Assert.That(found[1].Distance, Is.LessThan(found[0].Distance));
        }
    }

    [Test]
    public async Task UploadsOverwritesAndDeletesWhileServingKeepTheIndexCurrent()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 6).StartAsync();
        await stack.WaitUntilDeployedAsync();
        var names = LocalStackHarness.SampleNames;

        // Upload: a new image is found once the watcher and streamUpdateDatapoint have run.
        stack.AddImage("uploads/new.jpg", LocalStackHarness.SampleBytes(names[20]));
        await LocalStackHarness.WaitUntilAsync(async () => await stack.NearestAsync(LocalStackHarness.SampleBytes(names[20])) == "uploads/new.jpg", TimeSpan.FromSeconds(30), "the upload to be indexed");

        // Overwrite: the name now stands for the new content.
        stack.AddImage(names[0], LocalStackHarness.SampleBytes(names[30]));
        await LocalStackHarness.WaitUntilAsync(async () => await stack.NearestAsync(LocalStackHarness.SampleBytes(names[30])) == names[0], TimeSpan.FromSeconds(30), "the overwrite to be indexed");

        // Delete: the image is no longer among the results.
        File.Delete(Path.Combine(stack.ImagesFolder, names[1]));
        await LocalStackHarness.WaitUntilAsync(async () =>
            (await stack.QueryAsync(20, LocalStackHarness.SampleBytes(names[1])))[0].All(n => n.Id != names[1]),
            TimeSpan.FromSeconds(30), "the deletion to reach the index");
        Assert.That(await stack.State.GetDatapointRecordAsync(names[1], CancellationToken.None), Is.Null);
    }

    [Test]
    public async Task ARestartKeepsTheIndexAndDoesNotBackfillAgain()
    {
        await using var stack = LocalStackHarness.Create(imageCount: 5);
        await stack.StartAsync();
        await stack.WaitUntilDeployedAsync();
        var runBefore = (await stack.TasksDocumentAsync())!.GetString("runId");

        await stack.RestartAsync();

        var state = await stack.State.ReadIndexAvailabilityAsync(CancellationToken.None);
        Assert.That(state.Readiness, Is.EqualTo(IndexReadiness.Deployed));
        var name = LocalStackHarness.SampleNames[3];
        Assert.That(await stack.NearestAsync(LocalStackHarness.SampleBytes(name)), Is.EqualTo(name));
        Assert.That((await stack.TasksDocumentAsync())!.GetString("runId"), Is.EqualTo(runBefore));
    }

    [Test]
    public async Task ChangesMadeWhileStoppedAreIndexedAfterTheRestart()
    {
        await using var stack = LocalStackHarness.Create(imageCount: 4);
        await stack.StartAsync();
        await stack.WaitUntilDeployedAsync();
        await stack.StopAsync();

        var added = LocalStackHarness.SampleNames[25];
        stack.AddImage("while-stopped.jpg", LocalStackHarness.SampleBytes(added));
        await stack.StartAsync();

        await LocalStackHarness.WaitUntilAsync(async () => await stack.NearestAsync(LocalStackHarness.SampleBytes(added)) == "while-stopped.jpg", TimeSpan.FromSeconds(30), "the image added while stopped");
    }

    [Test]
    public async Task UploadsWhileTheIndexIsBuildingAreAppliedOnceItIsDeployed()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 4, buildDelay: TimeSpan.FromSeconds(3)).StartAsync();
        await LocalStackHarness.WaitUntilAsync(async () => (await stack.MetadataDocumentAsync())?.GetString("status") == "INDEX_BUILDING", TimeSpan.FromSeconds(60), "the index to be building");

        var late = LocalStackHarness.SampleNames[15];
        stack.AddImage("late.jpg", LocalStackHarness.SampleBytes(late));
        await stack.WaitUntilDeployedAsync();

        await LocalStackHarness.WaitUntilAsync(async () => await stack.NearestAsync(LocalStackHarness.SampleBytes(late)) == "late.jpg", TimeSpan.FromSeconds(30), "the deferred upload");
    }

    [Test]
    public async Task WithoutBackfillTheFirstUploadCreatesTheIndexOnceAndLaterUploadsFollow()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 0, new Dictionary<string, string?> { ["DO_BACKFILL"] = "false" }).StartAsync();
        var names = LocalStackHarness.SampleNames;
        for (var i = 0; i < 3; i++)
        {
            stack.AddImage($"upload-{i}.jpg", LocalStackHarness.SampleBytes(names[i]));
        }

        await stack.WaitUntilDeployedAsync();
        for (var i = 0; i < 3; i++)
        {
            var expected = $"upload-{i}.jpg";
            await LocalStackHarness.WaitUntilAsync(async () => await stack.NearestAsync(LocalStackHarness.SampleBytes(names[i])) == expected, TimeSpan.FromSeconds(30), expected);
        }

        var tasks = await stack.TasksDocumentAsync();
        Assert.That(tasks!.GetInt64("totalLength"), Is.EqualTo(1), "one first-image backfill, not one per upload");
    }

    [Test]
    public async Task ContentAlreadyIndexedIsNotEmbeddedAgain()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 3).StartAsync();
        await stack.WaitUntilDeployedAsync();
        await stack.WaitUntilQuietAsync();
        var name = LocalStackHarness.SampleNames[0];
        var before = await stack.State.GetDatapointRecordAsync(name, CancellationToken.None);

        // The same bytes written again: a new generation with the same MD5.
        await Task.Delay(20);
        stack.AddImage(name, LocalStackHarness.SampleBytes(name));
        var objects = stack.Services.GetRequiredService<IObjectStore>();
        var rewritten = await objects.GetMetadataAsync(stack.Options.ImageBucket, name);
        Assert.That(rewritten!.Generation, Is.GreaterThan(before!.Generation));
        await stack.Services.GetRequiredService<ReverseImageSearch.Local.Storage.LocalBucketWatcher>().ScanNowAsync();
        await stack.WaitUntilQuietAsync();

        var after = await stack.State.GetDatapointRecordAsync(name, CancellationToken.None);
        Assert.That(after, Is.EqualTo(before), "the record of the indexed content is untouched: nothing was embedded or upserted");
    }
}
