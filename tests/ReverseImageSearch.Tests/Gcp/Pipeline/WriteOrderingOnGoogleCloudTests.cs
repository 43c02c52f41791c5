using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Embedding;
using ReverseImageSearch.Emulator;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Gcp.Firestore;
using ReverseImageSearch.Tests.Functions;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp.Pipeline;

/// <summary>
/// streamUpdateDatapoint and streamRemoveDatapoint of the same object interleaved on the Google Cloud adapters:
/// Cloud Storage (an in-test server, with generations), Firestore (Google's emulator) as document store and, with
/// INDEX_BACKEND=firestore, as the vector index. The finalize is held between its read of the image and its write;
/// the delete's handler runs completely in between.
/// </summary>
[NonParallelizable]
public sealed class WriteOrderingOnGoogleCloudTests
{
    private const string Project = "demo-ordering";
    private const string Bucket = "demo-ordering-images";

    [Test]
    public async Task AFinalizeRacingADeleteLeavesNoVectorForTheDeletedImageInTheFirestoreIndex()
    {
        var emulator = await FirestoreEmulator.EnsureStartedAsync();
        await FirestoreEmulator.WipeAsync(Project);
        await using var server = await ContractServer.StartAsync("storage.v1", "firestore.v1");
        server.Fallback = FirestoreEmulator.Forward(emulator);
        var storage = new SimulatedStorage(server, Bucket);
        var options = new ExtensionOptions
        {
            ProjectId = Project,
            InstanceId = "ris",
            Location = "us-central1",
            ImageBucket = Bucket,
            IndexBackend = IndexBackend.Firestore,
        };
        PausingObjectStore? paused = null;
        await using var services = GcpTestHost.Build(
            server,
            before: s => s.AddLogging().AddReverseImageSearchCore(options).AddImageEmbedder(),
            extension: options,
            after: s =>
            {
                // The production Cloud Storage adapter, held at the test's pause point.
                var cloudStorage = s.Last(d => d.ServiceType == typeof(IObjectStore)).ImplementationFactory!;
                s.AddSingleton<IObjectStore>(sp => paused = new PausingObjectStore((IObjectStore)cloudStorage(sp)));
                s.AddSingleton<StreamUpdateDatapoint>().AddSingleton<StreamRemoveDatapoint>();
            });
        Assert.That(services.GetRequiredService<IVectorIndexService>(), Is.InstanceOf<FirestoreVectorIndexService>());
        var state = services.GetRequiredService<CoordinationState>();
        // As an installation leaves it: the running embedding settings recorded, the index deployed.
        await state.RecordEmbeddingSettingsAsync(CancellationToken.None);
        await services.GetRequiredService<IDocumentStore>().SetAsync(
            state.Paths.Metadata, new Dictionary<string, object?> { ["status"] = "INDEX_DEPLOYED" }, SetMode.Merge, CancellationToken.None);

        const string name = "race/finalized-then-deleted.jpg";
        var samples = SampleImages.EnsureCreated(Path.Combine(Path.GetTempPath(), "ris-test-samples-" + Environment.ProcessId));
        var content = await File.ReadAllBytesAsync(Directory.GetFiles(samples, "*.jpg").Order(StringComparer.Ordinal).First());
        storage.Seed(Bucket, name, content, "image/jpeg");
        var stored = (await storage.GetMetadataAsync(Bucket, name))!;
        var finalized = new StorageObjectEvent(StorageEventKind.Finalized, Bucket, name, stored.ContentType, stored.Size, stored.Md5Hash, stored.Generation, stored.Metageneration);
        _ = services.GetRequiredService<IObjectStore>();

        var held = paused!.PauseAfterRead(name);
        var finalize = Task.Run(() => services.GetRequiredService<StreamUpdateDatapoint>().HandleAsync(finalized, CancellationToken.None));
        await Task.WhenAny(held.WaitUntilReachedAsync(), finalize);
        Assert.That(held.Reached.Task.IsCompleted, Is.True, () => $"the finalize ended before its write: {finalize.Exception}");
        await storage.DeleteAsync(Bucket, name);
        await services.GetRequiredService<StreamRemoveDatapoint>().HandleAsync(finalized with { Kind = StorageEventKind.Deleted }, CancellationToken.None);
        held.Release();
        await finalize;

        var embedding = (await services.GetRequiredService<IImageEmbedder>().EmbedAsync([content], CancellationToken.None))[0].Vector!;
        var found = await services.GetRequiredService<IVectorIndexService>().FindNeighborsAsync(
            "", "", "", [new NeighborQuery("q", embedding)], neighborCount: 10, CancellationToken.None);
        Assert.That(found[0].Neighbors.Select(n => n.DatapointId), Does.Not.Contain(name), "no vector for the deleted image");
        Assert.That(await state.GetDatapointRecordAsync(name, CancellationToken.None), Is.Null);
        server.AssertNoViolations();
    }
}
