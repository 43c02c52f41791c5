using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Local.Storage;
using ReverseImageSearch.Tests.Local.Tasks;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>
/// Handlers of the same object interleaved at their worst: one is held between its read of the object and its write to
/// the index while another runs to its end. Whatever the order, the index ends as the bucket is: no vector for a deleted
/// image, and a replaced image's vector from its newest content. On both local engines: the Vertex AI twin (a built,
/// deployed index) and the Firestore twin (vectors written during the backfill).
/// </summary>
[Parallelizable(ParallelScope.None)]
public class WriteOrderingTests
{
    private static readonly TaskDelivery Trigger = new(JsonSerializer.SerializeToElement(new { }), "install-task", 0);

    [TestCase("vertex")]
    [TestCase("firestore")]
    public async Task AFinalizeRacingADeleteOfTheSameObjectLeavesNoVectorForTheDeletedImage(string backend)
    {
        var (stack, store) = await DeployedStackAsync(backend);
        await using var _ = stack;
        const string name = "race/finalized-then-deleted.jpg";
        var content = LocalStackHarness.SampleBytes(LocalStackHarness.SampleNames[10]);
        stack.AddImage(name, content);
        var finalized = await EventAsync(stack, StorageEventKind.Finalized, name);

        // finalize's read -> the delete handler runs completely -> finalize's write.
        var held = store.PauseAfterRead(name);
        var finalize = Task.Run(() => stack.Services.GetRequiredService<StreamUpdateDatapoint>().HandleAsync(finalized, CancellationToken.None));
        await held.WaitUntilReachedAsync();
        File.Delete(Path.Combine(stack.ImagesFolder, name));
        await stack.Services.GetRequiredService<StreamRemoveDatapoint>().HandleAsync(finalized with { Kind = StorageEventKind.Deleted }, CancellationToken.None);
        held.Release();
        await finalize;

        var found = (await stack.QueryAsync(10, content))[0].Select(n => n.Id);
        Assert.That(found, Does.Not.Contain(name), "no vector for the deleted image");
        Assert.That(await stack.State.GetDatapointRecordAsync(name, CancellationToken.None), Is.Null, "no record says it is indexed");
    }

    [TestCase("vertex")]
    [TestCase("firestore")]
    public async Task ADeleteRacingTheRecreationOfTheSameNameLeavesTheNewImageIndexed(string backend)
    {
        var (stack, store) = await DeployedStackAsync(backend);
        await using var _ = stack;
        const string name = "race/deleted-then-recreated.jpg";
        var (recreated, recreatedContent) = await RaceADeleteWithTheRecreationAsync(
            stack, store, name, stack.Services.GetRequiredService<StreamRemoveDatapoint>(), LocalStackHarness.SampleNames[11], LocalStackHarness.SampleNames[33]);

        Assert.That(await stack.NearestAsync(recreatedContent), Is.EqualTo(name), "the image that exists now is indexed");
        Assert.That((await stack.State.GetDatapointRecordAsync(name, CancellationToken.None))?.Md5Hash, Is.EqualTo(recreated.Md5Hash));
    }

    /// <summary>
    /// streamRemoveDatapoint as deployed carries no embedder (only the functions that embed do): when its second look
    /// finds a new image under the name, it hands the write to datapointWriteTask instead of embedding, and that task
    /// leaves the new image indexed.
    /// </summary>
    [TestCase("vertex")]
    [TestCase("firestore")]
    public async Task ADeleteRacingTheRecreationHandsTheNewImageToDatapointWriteTaskWhenTheFunctionDoesNotEmbed(string backend)
    {
        var (stack, store) = await DeployedStackAsync(backend);
        await using var _ = stack;
        const string name = "race/deleted-then-recreated-without-embedder.jpg";
        var services = stack.Services;
        var gate = services.GetRequiredService<IndexGate>();
        var withoutEmbedder = new StreamRemoveDatapoint(
            services.GetRequiredService<ImageScope>(),
            gate,
            new DatapointSync(services.GetRequiredService<IObjectStore>(), services.GetRequiredService<IVectorIndexService>(), stack.State, gate,
                stack.Options, services.GetRequiredService<ILogger<DatapointSync>>()),
            services.GetRequiredService<ILogger<StreamRemoveDatapoint>>());
        var (recreated, recreatedContent) = await RaceADeleteWithTheRecreationAsync(
            stack, store, name, withoutEmbedder, LocalStackHarness.SampleNames[12], LocalStackHarness.SampleNames[34]);

        Assert.That(await stack.NearestAsync(recreatedContent), Is.Not.EqualTo(name), "the removal took the vector out and did not embed");
        var handedOver = (await QueuedPayloads.ReadAsync(services, IndexGate.DatapointWriteTaskFunction))
            .Where(p => p.Deserialize<DatapointWrite>(CoreJson.Options)?.ImagePath == name).ToList();
        Assert.That(handedOver, Has.Count.EqualTo(1), "one datapointWriteTask for the new image");
        Assert.That(handedOver[0].Deserialize<DatapointWrite>(CoreJson.Options)!.Operation, Is.EqualTo(DatapointWrite.Update));

        await services.GetRequiredService<DatapointWriteTask>().HandleAsync(new TaskDelivery(handedOver[0], "handed-over", 0), CancellationToken.None);
        Assert.That(await stack.NearestAsync(recreatedContent), Is.EqualTo(name), "datapointWriteTask indexed the image that exists now");
        Assert.That((await stack.State.GetDatapointRecordAsync(name, CancellationToken.None))?.Md5Hash, Is.EqualTo(recreated.Md5Hash));
    }

    /// <summary>
    /// INDEX_BACKEND=firestore writes a chunk's vectors while events for the same images are handled at once: a chunk
    /// that read an image before it was replaced or deleted must not put its older vector back after the event's write.
    /// (With a built index the event's write waits for the deployment, after every chunk.)
    /// </summary>
    [TestCase("overwritten")]
    [TestCase("deleted")]
    public async Task ABackfillChunkThatReadAnImageBeforeItChangedDoesNotOverwriteTheNewerState(string change)
    {
        PausingObjectStore? store = null;
        await using var stack = await LocalStackHarness.Create(
            imageCount: 4,
            new Dictionary<string, string?> { ["INDEX_BACKEND"] = "firestore", ["BATCH_SIZE"] = "2" },
            services => services.AddSingleton<IObjectStore>(sp => store = new PausingObjectStore(sp.GetRequiredService<LocalObjectStore>())))
            .StartAsync(run: false);
        await stack.Services.GetRequiredService<BackfillTrigger>().HandleAsync(Trigger, CancellationToken.None);
        var chunkId = stack.State.Paths.BackfillTaskId(1);
        var chunk = new BackfillChunk(chunkId, stack.Options.ImageBucket, (await stack.State.ReadBackfillChunkAsync(chunkId, CancellationToken.None))!.Objects);
        var victim = chunk.Objects[0];
        var olderContent = LocalStackHarness.SampleBytes(victim);
        var newerContent = LocalStackHarness.SampleBytes(LocalStackHarness.SampleNames[30]);

        // The chunk's read of the image -> the image changes and its event is handled completely -> the chunk's write.
        var held = store!.PauseAfterRead(victim);
        var backfill = Task.Run(() => stack.Services.GetRequiredService<BackfillTask>().HandleAsync(
            new TaskDelivery(JsonSerializer.SerializeToElement(chunk, CoreJson.Options), "task-" + chunkId, 0), CancellationToken.None));
        await held.WaitUntilReachedAsync();
        var before = await EventAsync(stack, StorageEventKind.Finalized, victim);
        if (change == "overwritten")
        {
            stack.AddImage(victim, newerContent);
            await stack.Services.GetRequiredService<StreamUpdateDatapoint>().HandleAsync(await EventAsync(stack, StorageEventKind.Finalized, victim), CancellationToken.None);
        }
        else
        {
            File.Delete(Path.Combine(stack.ImagesFolder, victim));
            await stack.Services.GetRequiredService<StreamRemoveDatapoint>().HandleAsync(before with { Kind = StorageEventKind.Deleted }, CancellationToken.None);
        }

        held.Release();
        await backfill;

        var record = await stack.State.GetDatapointRecordAsync(victim, CancellationToken.None);
        if (change == "overwritten")
        {
            var nearest = (await stack.QueryAsync(1, newerContent))[0][0];
            Assert.That(nearest.Id, Is.EqualTo(victim));
            Assert.That(nearest.Distance, Is.EqualTo(1.0).Within(1e-4), "the vector is the newer content's (dot product of a unit vector with itself)");
            Assert.That(record?.Md5Hash, Is.EqualTo(Convert.ToBase64String(MD5.HashData(newerContent))), "the record names the newer content");
        }
        else
        {
            Assert.That((await stack.QueryAsync(10, olderContent))[0].Select(n => n.Id), Does.Not.Contain(victim), "no vector for the deleted image");
            Assert.That(record?.Status, Is.Not.EqualTo(DatapointStatus.Indexed), "no record says the deleted image is indexed");
        }
    }

    /// <summary>
    /// <paramref name="name"/> indexed from <paramref name="firstSample"/> and deleted; <paramref name="removal"/> handles the
    /// delete: its read (nothing there) -> the name is re-created from <paramref name="recreatedSample"/> and its finalize
    /// runs completely -> the removal's write and second look. Returns the re-creation's event and content.
    /// </summary>
    private static async Task<(StorageObjectEvent Recreated, byte[] Content)> RaceADeleteWithTheRecreationAsync(
        LocalStackHarness stack, PausingObjectStore store, string name, StreamRemoveDatapoint removal, string firstSample, string recreatedSample)
    {
        stack.AddImage(name, LocalStackHarness.SampleBytes(firstSample));
        var first = await EventAsync(stack, StorageEventKind.Finalized, name);
        await stack.Services.GetRequiredService<StreamUpdateDatapoint>().HandleAsync(first, CancellationToken.None);
        File.Delete(Path.Combine(stack.ImagesFolder, name));

        var held = store.PauseAfterMetadata(name);
        var removing = Task.Run(() => removal.HandleAsync(first with { Kind = StorageEventKind.Deleted }, CancellationToken.None));
        await held.WaitUntilReachedAsync();
        var content = LocalStackHarness.SampleBytes(recreatedSample);
        stack.AddImage(name, content);
        var recreated = await EventAsync(stack, StorageEventKind.Finalized, name);
        await stack.Services.GetRequiredService<StreamUpdateDatapoint>().HandleAsync(recreated, CancellationToken.None);
        held.Release();
        await removing;
        return (recreated, content);
    }

    /// <summary>A stack whose index is deployed, rebuilt without watcher and dispatcher: the test delivers every event itself.</summary>
    private static async Task<(LocalStackHarness Stack, PausingObjectStore Store)> DeployedStackAsync(string backend)
    {
        PausingObjectStore? store = null;
        var stack = LocalStackHarness.Create(
            imageCount: 3,
            new Dictionary<string, string?> { ["INDEX_BACKEND"] = backend },
            services => services.AddSingleton<IObjectStore>(sp => store = new PausingObjectStore(sp.GetRequiredService<LocalObjectStore>())));
        await stack.StartAsync();
        await stack.WaitUntilDeployedAsync();
        await stack.WaitUntilQuietAsync();
        await stack.StopAsync();
        await stack.StartAsync(run: false);
        _ = stack.Services.GetRequiredService<IObjectStore>();
        return (stack, store!);
    }

    private static async Task<StorageObjectEvent> EventAsync(LocalStackHarness stack, StorageEventKind kind, string name)
    {
        var stored = await stack.Services.GetRequiredService<LocalObjectStore>().GetMetadataAsync(stack.Options.ImageBucket, name)
            ?? throw new InvalidOperationException(name + " does not exist");
        return new StorageObjectEvent(kind, stored.Bucket, stored.Name, stored.ContentType, stored.Size, stored.Md5Hash, stored.Generation, stored.Metageneration);
    }
}
