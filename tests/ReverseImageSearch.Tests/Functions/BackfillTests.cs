using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Local.Tasks;
using ReverseImageSearch.Tests.Local.Tasks;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>backfillTrigger and backfillTask called directly on the local adapters, deliveries under the test's control.</summary>
public class BackfillTests
{
    private static readonly TaskDelivery Trigger = new(JsonSerializer.SerializeToElement(new { }), "install-task", 0);

    [Test]
    public async Task EveryChunkIsPlannedAndEnqueuedAtOnce()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 7, new Dictionary<string, string?> { ["BATCH_SIZE"] = "2" }).StartAsync(run: false);
        await stack.Services.GetRequiredService<BackfillTrigger>().HandleAsync(Trigger, CancellationToken.None);

        var tasks = await stack.TasksDocumentAsync();
        Assert.That(tasks!.GetInt64("totalLength"), Is.EqualTo(7));
        Assert.That(tasks.GetString("status"), Is.EqualTo("PENDING"));
        var chunks = await ChunksAsync(stack, 4);
        Assert.That(chunks.Select(c => c.Objects.Count), Is.EqualTo(new[] { 2, 2, 2, 1 }));
        Assert.That(chunks.SelectMany(c => c.Objects), Is.EquivalentTo(LocalStackHarness.SampleNames.Take(7)));

        var stats = await stack.Services.GetRequiredService<SqliteTaskQueue>().GetStatsAsync();
        Assert.That(stats.Queues[BackfillCoordinator.BackfillTaskFunction].PendingDue, Is.EqualTo(4), "all four chunks wait in the queue together");
    }

    [Test]
    public async Task ARedeliveredTriggerResumesItsRunInsteadOfStartingOver()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 4, new Dictionary<string, string?> { ["BATCH_SIZE"] = "2" }).StartAsync(run: false);
        var trigger = stack.Services.GetRequiredService<BackfillTrigger>();
        await trigger.HandleAsync(Trigger, CancellationToken.None);
        var first = (await ChunksAsync(stack, 2))[0];
        await stack.Services.GetRequiredService<BackfillTask>().HandleAsync(Delivery(first), CancellationToken.None);

        await trigger.HandleAsync(Trigger with { RetryCount = 1 }, CancellationToken.None);

        var tasks = await stack.TasksDocumentAsync();
        Assert.That(tasks!.GetInt64("processedLength"), Is.EqualTo(2), "progress survives the redelivery");
        var stats = await stack.Services.GetRequiredService<SqliteTaskQueue>().GetStatsAsync();
        Assert.That(stats.Queues[BackfillCoordinator.BackfillTaskFunction].PendingDue, Is.EqualTo(2), "the de-duplicated tasks are not enqueued twice");
    }

    /// <summary>
    /// A redelivered trigger lists the folder again; images added since must not become chunks beyond the recorded plan,
    /// which would count past totalLength (issue 11: processedLength 121 of 120 with racing uploads).
    /// </summary>
    [Test]
    public async Task ARedeliveredTriggerAfterTheFolderGrewKeepsItsPlanAndCountsExactlyToTheTotal()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 4, new Dictionary<string, string?> { ["BATCH_SIZE"] = "2" }).StartAsync(run: false);
        var trigger = stack.Services.GetRequiredService<BackfillTrigger>();
        await trigger.HandleAsync(Trigger, CancellationToken.None);
        foreach (var name in LocalStackHarness.SampleNames.Skip(4).Take(3))
        {
            stack.AddImage(name, LocalStackHarness.SampleBytes(name));
        }

        await trigger.HandleAsync(Trigger with { RetryCount = 1 }, CancellationToken.None);
        await RunQueuedChunksAsync(stack);

        var tasks = await stack.TasksDocumentAsync();
        Assert.That(tasks!.GetInt64("processedLength"), Is.EqualTo(tasks.GetInt64("totalLength")));
        Assert.That(tasks.GetInt64("totalLength"), Is.EqualTo(4), "the plan of the first delivery");
        Assert.That(tasks.GetString("status"), Is.EqualTo("DONE"));
    }

    /// <summary>
    /// A trigger that died after recording its plan but before enqueueing every chunk resumes that plan when delivered
    /// again, even if the folder changed meanwhile: chunks re-made from a new listing would not add up to the recorded
    /// totalLength, and the backfill would never reach DONE (issue 11: stuck with only datapointWriteTasks waiting).
    /// </summary>
    [Test]
    public async Task ATriggerThatDiedBeforeEnqueueingResumesItsRecordedPlanAfterTheFolderShrank()
    {
        await using var stack = await LocalStackHarness.Create(
            imageCount: 6,
            new Dictionary<string, string?> { ["BATCH_SIZE"] = "2" },
            services => services.AddSingleton<ITaskQueue>(sp => new FailFirstEnqueue(sp.GetRequiredService<SqliteTaskQueue>(), BackfillCoordinator.BackfillTaskFunction)))
            .StartAsync(run: false);
        var trigger = stack.Services.GetRequiredService<BackfillTrigger>();
        Assert.ThrowsAsync<IOException>(() => trigger.HandleAsync(Trigger, CancellationToken.None), "the first delivery dies while enqueueing");
        foreach (var name in LocalStackHarness.SampleNames.Take(3))
        {
            File.Delete(Path.Combine(stack.ImagesFolder, name));
        }

        await trigger.HandleAsync(Trigger with { RetryCount = 1 }, CancellationToken.None);
        await RunQueuedChunksAsync(stack);

        var tasks = await stack.TasksDocumentAsync();
        Assert.That(tasks!.GetString("status"), Is.EqualTo("DONE"));
        Assert.That(tasks.GetInt64("processedLength"), Is.EqualTo(tasks.GetInt64("totalLength")));
        var deleted = await stack.State.GetDatapointRecordAsync(LocalStackHarness.SampleNames[0], CancellationToken.None);
        Assert.That(deleted?.Status, Is.EqualTo(DatapointStatus.Skipped), "an image of the plan deleted since is skipped, not lost from the count");
    }

    /// <summary>deploy.sh run again enqueues a new install task (another name): the backfill under way goes on.</summary>
    [Test]
    public async Task ASecondInstallResumesTheBackfillUnderWayAndKeepsItsFiles()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 4, new Dictionary<string, string?> { ["BATCH_SIZE"] = "2" }).StartAsync(run: false);
        var trigger = stack.Services.GetRequiredService<BackfillTrigger>();
        await trigger.HandleAsync(Trigger, CancellationToken.None);
        await stack.Services.GetRequiredService<BackfillTask>().HandleAsync(Delivery((await ChunksAsync(stack, 2))[0]), CancellationToken.None);
        var files = await DatapointFilesAsync(stack);
        Assert.That(files, Is.Not.Empty);

        await trigger.HandleAsync(Trigger with { TaskName = "second-install-task" }, CancellationToken.None);

        var tasks = await stack.TasksDocumentAsync();
        var filesAfter = await DatapointFilesAsync(stack);
        Assert.Multiple(() =>
        {
            Assert.That(tasks!.GetString("runId"), Is.EqualTo(Trigger.TaskName), "the first install's run goes on");
            Assert.That(tasks.GetInt64("processedLength"), Is.EqualTo(2), "progress survives");
            Assert.That(filesAfter, Is.EqualTo(files), "the datapoint files written so far are kept");
        });
    }

    /// <summary>A finished backfill is the index's (or the index build's) input: a second install leaves it alone.</summary>
    [Test]
    public async Task ASecondInstallKeepsAFinishedBackfill()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 2, new Dictionary<string, string?> { ["BATCH_SIZE"] = "2" }).StartAsync(run: false);
        var trigger = stack.Services.GetRequiredService<BackfillTrigger>();
        await trigger.HandleAsync(Trigger, CancellationToken.None);
        await stack.Services.GetRequiredService<BackfillTask>().HandleAsync(Delivery((await ChunksAsync(stack, 1))[0]), CancellationToken.None);
        var before = await stack.TasksDocumentAsync();
        Assert.That(before!.GetString("status"), Is.EqualTo("DONE"));
        var files = await DatapointFilesAsync(stack);

        await trigger.HandleAsync(Trigger with { TaskName = "second-install-task" }, CancellationToken.None);

        var after = await stack.TasksDocumentAsync();
        var filesAfter = await DatapointFilesAsync(stack);
        Assert.Multiple(() =>
        {
            Assert.That(after!.GetString("runId"), Is.EqualTo(Trigger.TaskName));
            Assert.That(after.GetString("status"), Is.EqualTo("DONE"), "not started again");
            Assert.That(after.UpdateTime, Is.EqualTo(before.UpdateTime), "not written at all");
            Assert.That(filesAfter, Is.EqualTo(files));
        });
    }

    /// <summary>
    /// The documents say INDEX_DEPLOYED for an endpoint the index service no longer has (404, as after an uninstall
    /// that kept the documents): the install resets them and plans a new backfill, whose DONE creates a new index.
    /// </summary>
    [Test]
    public async Task AnInstallFindingTheRecordedIndexGoneStartsOver()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 3, new Dictionary<string, string?> { ["BATCH_SIZE"] = "2" }).StartAsync(run: false);
        await stack.Documents.SetAsync(stack.State.Paths.Tasks, new Dictionary<string, object?>
        {
            ["status"] = "DONE", ["runId"] = "old-install", ["totalLength"] = 3L, ["processedLength"] = 3L,
        }, SetMode.Overwrite);
        await stack.Documents.SetAsync(stack.State.Paths.Metadata, new Dictionary<string, object?>
        {
            ["status"] = "INDEX_DEPLOYED",
            ["index"] = "projects/p/locations/us-central1/indexes/deleted",
            ["indexEndpoint"] = "projects/p/locations/us-central1/indexEndpoints/deleted",
            ["publicEndpointDomainName"] = "deleted.vdb.vertexai.goog",
        }, SetMode.Overwrite);

        await stack.Services.GetRequiredService<BackfillTrigger>().HandleAsync(Trigger, CancellationToken.None);

        var tasks = await stack.TasksDocumentAsync();
        var metadata = await stack.MetadataDocumentAsync();
        Assert.Multiple(() =>
        {
            Assert.That(metadata?.GetString("status"), Is.Null, "the stale INDEX_DEPLOYED is gone");
            Assert.That(metadata?.GetString("indexEndpoint"), Is.Null, "and the deleted endpoint with it");
            Assert.That(tasks!.GetString("runId"), Is.EqualTo(Trigger.TaskName), "a new backfill");
            Assert.That(tasks.GetString("status"), Is.EqualTo("PENDING"));
            Assert.That(tasks.GetInt64("processedLength"), Is.Zero);
        });
        var readiness = (await stack.State.ReadIndexAvailabilityAsync(CancellationToken.None)).Readiness;
        Assert.That(readiness, Is.EqualTo(IndexReadiness.Preparing), "writes wait for the new index instead of going to the deleted one");
    }

    private static async Task<List<string>> DatapointFilesAsync(LocalStackHarness stack)
    {
        var names = new List<string>();
        await foreach (var stored in stack.Services.GetRequiredService<IObjectStore>().ListAsync(stack.Options.EmbeddingsBucket, "datapoints/"))
        {
            names.Add(stored.Name + "@" + stored.Md5Hash);
        }

        return names.Order(StringComparer.Ordinal).ToList();
    }

    [Test]
    public async Task ChunksDeliveredTwiceAndConcurrentlyAreCountedExactlyOnceAndDoneIsSetOnce()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 9, new Dictionary<string, string?> { ["BATCH_SIZE"] = "2" }).StartAsync(run: false);
        await stack.Services.GetRequiredService<BackfillTrigger>().HandleAsync(Trigger, CancellationToken.None);
        var chunks = await ChunksAsync(stack, 5);
        var task = stack.Services.GetRequiredService<BackfillTask>();

        // Every chunk twice, all at once: at-least-once delivery at its worst.
        await Task.WhenAll(chunks.Concat(chunks).Select(c => task.HandleAsync(Delivery(c), CancellationToken.None)));

        var tasks = await stack.TasksDocumentAsync();
        Assert.That(tasks!.GetInt64("processedLength"), Is.EqualTo(9));
        Assert.That(tasks.GetString("status"), Is.EqualTo("DONE"));
        var metadata = await stack.MetadataDocumentAsync();
        Assert.That(metadata!.GetInt64("outputShape"), Is.EqualTo(1280));

        var doneTransitions = await DocumentEventsAsync(stack)
            .CountAsync(c => c.After?.GetString("status") == "DONE" && c.Before?.GetString("status") != "DONE");
        Assert.That(doneTransitions, Is.EqualTo(1), "exactly one update switches the status to DONE");
    }

    [Test]
    public async Task AChunkOutOfAttemptsIsRecordedFailedAndTheBackfillStillCompletes()
    {
        var broken = LocalStackHarness.SampleNames[0];
        await using var stack = await LocalStackHarness.Create(
            imageCount: 4,
            new Dictionary<string, string?> { ["BATCH_SIZE"] = "2", ["BACKFILL_MAX_ATTEMPTS"] = "3" },
            services => services.AddSingleton<IObjectStore>(sp => new FailingReads(sp.GetRequiredService<ReverseImageSearch.Local.Storage.LocalObjectStore>(), broken)))
            .StartAsync(run: false);
        await stack.Services.GetRequiredService<BackfillTrigger>().HandleAsync(Trigger, CancellationToken.None);
        var chunks = await ChunksAsync(stack, 2);
        var task = stack.Services.GetRequiredService<BackfillTask>();

        Assert.ThrowsAsync<IOException>(() => task.HandleAsync(Delivery(chunks[0]) with { RetryCount = 0 }, CancellationToken.None), "an early attempt fails and is retried");
        await task.HandleAsync(Delivery(chunks[0]) with { RetryCount = 2 }, CancellationToken.None);
        await task.HandleAsync(Delivery(chunks[1]), CancellationToken.None);

        var failed = await stack.Documents.GetAsync(stack.State.Paths.Enqueue(chunks[0].Id));
        Assert.That(failed!.GetString("status"), Is.EqualTo("FAILED"));
        Assert.That(failed.GetString("error"), Does.Contain("disk on fire"));
        var tasks = await stack.TasksDocumentAsync();
        Assert.That(tasks!.GetString("status"), Is.EqualTo("DONE"));
        Assert.That(tasks.GetInt64("processedLength"), Is.EqualTo(4));
    }

    [Test]
    public async Task UnusableStoredImagesAreSkippedWithTheirReasonAndTheRestIsIndexed()
    {
        await using var stack = LocalStackHarness.Create(imageCount: 3);
        var valid = LocalStackHarness.SampleBytes(LocalStackHarness.SampleNames[0]);
        foreach (var (name, bytes) in BadImages.All(valid))
        {
            stack.AddImage("bad/" + name, bytes);
        }

        await stack.StartAsync();
        await stack.WaitUntilDeployedAsync();

        foreach (var (name, _) in BadImages.All(valid))
        {
            var record = await stack.State.GetDatapointRecordAsync("bad/" + name, CancellationToken.None);
            Assert.That(record?.Status, Is.EqualTo(DatapointStatus.Skipped), name);
            Assert.That(record!.Reason, Is.Not.Empty, name);
        }

        var good = LocalStackHarness.SampleNames[2];
        Assert.That(await stack.NearestAsync(LocalStackHarness.SampleBytes(good)), Is.EqualTo(good));
        Assert.That((await stack.TasksDocumentAsync())!.GetInt64("processedLength"), Is.EqualTo(7));
    }

    /// <summary>Delivers every backfillTask the queue holds, once each, as the dispatcher would.</summary>
    private static async Task RunQueuedChunksAsync(LocalStackHarness stack)
    {
        var task = stack.Services.GetRequiredService<BackfillTask>();
        foreach (var payload in await QueuedPayloads.ReadAsync(stack.Services, BackfillCoordinator.BackfillTaskFunction))
        {
            await task.HandleAsync(new TaskDelivery(payload, "queued", 0), CancellationToken.None);
        }
    }

    private static TaskDelivery Delivery(BackfillChunk chunk) =>
        new(JsonSerializer.SerializeToElement(chunk, CoreJson.Options), "task-" + chunk.Id, 0);

    private static async Task<IReadOnlyList<BackfillChunk>> ChunksAsync(LocalStackHarness stack, int count)
    {
        var chunks = new List<BackfillChunk>();
        for (var n = 1; n <= count; n++)
        {
            var id = stack.State.Paths.BackfillTaskId(n);
            var doc = await stack.Documents.GetAsync(stack.State.Paths.Enqueue(id));
            Assert.That(doc, Is.Not.Null, $"enqueue document {id}");
            Assert.That(doc!.GetString("status"), Is.EqualTo("PENDING"));
            chunks.Add(new BackfillChunk(id, stack.Options.ImageBucket, CoordinationState.ReadBackfillChunk(doc).Objects));
        }

        Assert.That(await stack.Documents.GetAsync(stack.State.Paths.Enqueue(stack.State.Paths.BackfillTaskId(count + 1))), Is.Null);
        return chunks;
    }

    /// <summary>The Firestore update events the tasks document produced, as the local store queued them.</summary>
    private static async IAsyncEnumerable<DocumentChange> DocumentEventsAsync(LocalStackHarness stack)
    {
        foreach (var payload in await QueuedPayloads.ReadAsync(stack.Services, ReverseImageSearch.Local.LocalEventQueues.DocumentUpdated))
        {
            yield return ReverseImageSearch.Local.Documents.SqliteDocumentStore.DecodeChange(payload);
        }
    }

    /// <summary>A task queue that fails the first enqueue for one function, as a process dying at that moment would.</summary>
    private sealed class FailFirstEnqueue(ITaskQueue inner, string functionName) : ITaskQueue
    {
        private int _failed;

        public Task<bool> EnqueueAsync(string function, JsonElement payload, TaskOptions? options = null, CancellationToken cancellationToken = default) =>
            function == functionName && Interlocked.Exchange(ref _failed, 1) == 0
                ? throw new IOException("killed while enqueueing")
                : inner.EnqueueAsync(function, payload, options, cancellationToken);
    }

    /// <summary>An object store whose reads of one object fail as a broken disk would.</summary>
    private sealed class FailingReads(IObjectStore inner, string brokenName) : IObjectStore
    {
        public IAsyncEnumerable<StoredObject> ListAsync(string bucket, string? prefix, CancellationToken cancellationToken = default) => inner.ListAsync(bucket, prefix, cancellationToken);

        public Task<StoredObject?> GetMetadataAsync(string bucket, string name, CancellationToken cancellationToken = default) => inner.GetMetadataAsync(bucket, name, cancellationToken);

        public Task<byte[]> ReadAsync(string bucket, string name, CancellationToken cancellationToken = default) =>
            name == brokenName ? throw new IOException("disk on fire") : inner.ReadAsync(bucket, name, cancellationToken);

        public Task<StoredObject> WriteAsync(string bucket, string name, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(bucket, name, content, contentType, cancellationToken);

        public Task<bool> DeleteAsync(string bucket, string name, CancellationToken cancellationToken = default) => inner.DeleteAsync(bucket, name, cancellationToken);
    }
}
