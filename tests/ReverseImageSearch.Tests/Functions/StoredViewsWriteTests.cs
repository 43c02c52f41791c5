using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Local.Storage;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>
/// MATCH_CROPS on the write paths (DatapointSync and backfillTask): an image's datapoint and its views are written
/// together, the views an image no longer has are removed, and removing an image removes every id it may have had.
/// The embedder is a stand-in whose "wide" pictures have all three views and whose "square" ones only the zoom; the
/// index records the calls it gets and what it holds.
/// </summary>
public sealed class StoredViewsWriteTests
{
    private static readonly DeployedIndex Deployed = new("projects/p/locations/l/indexes/1", "projects/p/locations/l/indexEndpoints/1", "test.vdb.vertexai.goog");

    [TestCase("vertex")]
    [TestCase("firestore")]
    public async Task AnImageIsUpsertedWithItsViewsInOneCall(string backend)
    {
        var (stack, index, _) = await StackAsync(backend, matchCrops: true);
        await using var _ = stack;
        const string name = "a/b/wide.jpg";
        stack.AddImage(name, FakeViewsEmbedder.Wide(1));

        await stack.Services.GetRequiredService<DatapointSync>().SyncAsync(Deployed, name, CancellationToken.None);

        Assert.That(index.Upserts, Has.Count.EqualTo(1), "one upsert call");
        var written = index.Upserts.Single();
        Assert.That(written.Select(d => d.DatapointId), Is.EquivalentTo(ImageViews.AllIds(name)));
        Assert.That(written.Single(d => d.DatapointId == name).CrowdingTag, Is.Null, "the image is its own crowd");
        Assert.Multiple(() =>
        {
            foreach (var view in written.Where(d => ImageViews.IsView(d.DatapointId)))
            {
                Assert.That(view.CrowdingTag, Is.EqualTo(name), view.DatapointId);
                Assert.That(view.Folders, Is.EqualTo(new[] { "a", "a/b" }), view.DatapointId);
                Assert.That(view.FeatureVector, Is.EqualTo(FakeViewsEmbedder.ViewVector(1, view.DatapointId[(name.Length + 1)..])), view.DatapointId);
            }
        });
        Assert.That(index.Removals, Is.Empty, "a wide picture has every view: nothing to take out");
    }

    [TestCase("vertex")]
    [TestCase("firestore")]
    public async Task AWidePictureOverwrittenByASquareOneLeavesNoStaleView(string backend)
    {
        var (stack, index, _) = await StackAsync(backend, matchCrops: true);
        await using var _ = stack;
        const string name = "wide-then-square.jpg";
        var sync = stack.Services.GetRequiredService<DatapointSync>();
        stack.AddImage(name, FakeViewsEmbedder.Wide(1));
        await sync.SyncAsync(Deployed, name, CancellationToken.None);
        Assert.That(index.Ids, Is.EquivalentTo(ImageViews.AllIds(name)));

        stack.AddImage(name, FakeViewsEmbedder.Square(2));
        await sync.SyncAsync(Deployed, name, CancellationToken.None);

        Assert.That(index.Ids, Is.EquivalentTo(new[] { name, ImageViews.Id(name, ImageViews.CenterZoom) }));
        Assert.That(index.Vector(ImageViews.Id(name, ImageViews.CenterZoom)), Is.EqualTo(FakeViewsEmbedder.ViewVector(2, ImageViews.CenterZoom)));
    }

    /// <summary>Also with MATCH_CROPS=false: views left from when it was true go with the image, in the same one call.</summary>
    [TestCase("vertex", true)]
    [TestCase("firestore", true)]
    [TestCase("vertex", false)]
    public async Task ADeletedImageTakesEveryIdItMayHaveOutInOneCall(string backend, bool matchCrops)
    {
        var (stack, index, _) = await StackAsync(backend, matchCrops);
        await using var _ = stack;
        const string name = "deleted/wide.jpg";
        stack.AddImage(name, FakeViewsEmbedder.Wide(3));
        await stack.Services.GetRequiredService<DatapointSync>().SyncAsync(Deployed, name, CancellationToken.None);
        index.Hold(ImageViews.AllIds(name).Where(ImageViews.IsView).Select(id => ForView(name, id)));
        var removalsBefore = index.Removals.Count;

        File.Delete(Path.Combine(stack.ImagesFolder, name));
        await stack.Services.GetRequiredService<DatapointSync>().SyncAsync(Deployed, name, CancellationToken.None);

        var removals = index.Removals.Skip(removalsBefore).ToArray();
        Assert.That(index.Ids, Is.Empty);
        Assert.That(removals, Has.Length.EqualTo(1), "one removal call");
        Assert.That(removals[0], Is.EquivalentTo(ImageViews.AllIds(name)));
    }

    [TestCase("vertex", true)]
    [TestCase("firestore", false)]
    public async Task AnImageThatBecameUnusableTakesEveryIdItMayHaveOut(string backend, bool matchCrops)
    {
        var (stack, index, _) = await StackAsync(backend, matchCrops);
        await using var _ = stack;
        const string name = "spoiled.jpg";
        var sync = stack.Services.GetRequiredService<DatapointSync>();
        stack.AddImage(name, FakeViewsEmbedder.Wide(4));
        await sync.SyncAsync(Deployed, name, CancellationToken.None);
        index.Hold(ImageViews.AllIds(name).Where(ImageViews.IsView).Select(id => ForView(name, id)));

        stack.AddImage(name, FakeViewsEmbedder.Unusable);
        await sync.SyncAsync(Deployed, name, CancellationToken.None);

        Assert.That(index.Ids, Is.Empty);
        Assert.That(index.Removals.Last(), Is.EquivalentTo(ImageViews.AllIds(name)));
        Assert.That((await stack.State.GetDatapointRecordAsync(name, CancellationToken.None))?.Status, Is.EqualTo(DatapointStatus.Skipped));
    }

    /// <summary>
    /// DatapointSync's ordering rule holds for views: a writer of the wide picture held between its read and its write
    /// while the square one replacing it is written completely must not leave the wide picture's end squares behind.
    /// </summary>
    [Test]
    public async Task ARewriteRacingAnOverwriteLeavesOnlyTheNewPicturesViews()
    {
        var (stack, index, store) = await StackAsync("vertex", matchCrops: true);
        await using var _ = stack;
        const string name = "race/wide-then-square.jpg";
        var sync = stack.Services.GetRequiredService<DatapointSync>();
        stack.AddImage(name, FakeViewsEmbedder.Wide(5));

        var held = store.PauseAfterRead(name);
        var wide = Task.Run(() => sync.SyncAsync(Deployed, name, CancellationToken.None));
        await Task.WhenAny(held.WaitUntilReachedAsync(), wide);
        Assert.That(held.Reached.Task.IsCompleted, Is.True, () => $"the wide picture's writer ended before its write: {wide.Exception}");
        stack.AddImage(name, FakeViewsEmbedder.Square(6));
        await sync.SyncAsync(Deployed, name, CancellationToken.None);
        held.Release();
        await wide;

        Assert.That(index.Ids, Is.EquivalentTo(new[] { name, ImageViews.Id(name, ImageViews.CenterZoom) }));
        Assert.That(index.Vector(name), Is.EqualTo(FakeViewsEmbedder.ImageVector(6)));
        Assert.That(index.Vector(ImageViews.Id(name, ImageViews.CenterZoom)), Is.EqualTo(FakeViewsEmbedder.ViewVector(6, ImageViews.CenterZoom)));
    }

    /// <summary>
    /// INDEX_BACKEND=firestore: a chunk upserts its images with their views in one call, and in one more call takes out
    /// what must not be there: the views a square picture does not have, and every id of an image it skipped.
    /// </summary>
    [Test]
    public async Task ABackfillChunkUpsertsImagesWithTheirViewsAndTakesOutWhatTheyNoLongerHave()
    {
        var (stack, index, _) = await StackAsync("firestore", matchCrops: true, images: new()
        {
            ["x/wide.jpg"] = FakeViewsEmbedder.Wide(7),
            ["x/square.jpg"] = FakeViewsEmbedder.Square(8),
            ["x/broken.jpg"] = FakeViewsEmbedder.Unusable,
        });
        await using var _ = stack;
        // Left from an earlier write: the square picture was wide once, the broken one was a picture.
        index.Hold(ImageViews.AllIds("x/square.jpg").Concat(ImageViews.AllIds("x/broken.jpg")).Select(id => ForView(ImageViews.ImageOf(id), id)));

        await RunBackfillAsync(stack);

        Assert.That(index.Upserts, Has.Count.EqualTo(1), "one upsert call for the chunk");
        Assert.That(index.Upserts[0].Select(d => d.DatapointId), Is.EquivalentTo(
            ImageViews.AllIds("x/wide.jpg").Append("x/square.jpg").Append(ImageViews.Id("x/square.jpg", ImageViews.CenterZoom))));
        Assert.That(index.Upserts[0].Where(d => ImageViews.IsView(d.DatapointId)).Select(d => d.CrowdingTag), Has.All.Not.Null);
        Assert.That(index.Removals, Has.Count.EqualTo(1), "one removal call for the chunk");
        Assert.That(index.Ids, Is.EquivalentTo(
            ImageViews.AllIds("x/wide.jpg").Append("x/square.jpg").Append(ImageViews.Id("x/square.jpg", ImageViews.CenterZoom))));
    }

    /// <summary>
    /// With a built index (vertex), the chunk writes its images and their views as lines of a datapoint file, each line
    /// with its crowding tag (the image; Vertex AI's key "crowding_tag") and its folders, nothing to remove.
    /// </summary>
    [Test]
    public async Task ABackfillChunkWritesImagesAndTheirViewsToTheDatapointFileWithTheirCrowdingTag()
    {
        var (stack, index, _) = await StackAsync("vertex", matchCrops: true, images: new()
        {
            ["y/wide.jpg"] = FakeViewsEmbedder.Wide(9),
            ["square.jpg"] = FakeViewsEmbedder.Square(10),
        });
        await using var _ = stack;

        await RunBackfillAsync(stack);

        var objects = stack.Services.GetRequiredService<IObjectStore>();
        var lines = new List<JsonElement>();
        await foreach (var file in objects.ListAsync(stack.Options.EmbeddingsBucket, "datapoints/"))
        {
            var text = Encoding.UTF8.GetString(await objects.ReadAsync(stack.Options.EmbeddingsBucket, file.Name));
            lines.AddRange(text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()));
        }

        var byId = lines.ToDictionary(l => l.GetProperty("id").GetString()!);
        Assert.That(byId.Keys, Is.EquivalentTo(ImageViews.AllIds("y/wide.jpg").Append("square.jpg").Append(ImageViews.Id("square.jpg", ImageViews.CenterZoom))));
        Assert.Multiple(() =>
        {
            foreach (var (id, line) in byId)
            {
                Assert.That(line.GetProperty("crowding_tag").GetString(), Is.EqualTo(ImageViews.ImageOf(id)), id);
                Assert.That(line.TryGetProperty("restricts", out var restricts) && restricts.GetArrayLength() > 0, Is.EqualTo(id.StartsWith("y/", StringComparison.Ordinal)), id);
            }
        });
        Assert.That(byId[ImageViews.Id("y/wide.jpg", ImageViews.EndSquare)].GetProperty("restricts")[0].GetProperty("allow").EnumerateArray().Select(a => a.GetString()),
            Is.EqualTo(new[] { "y" }));
        Assert.That(index.Upserts, Is.Empty, "the index is built from the files");
    }

    private static IndexDatapoint ForView(string image, string id) =>
        ImageViews.IsView(id) ? IndexDatapoint.ForView(image, new ImageView(id[(image.Length + 1)..], [9, 9, 9, 9])) : IndexDatapoint.ForImage(image, [9, 9, 9, 9]);

    private static async Task RunBackfillAsync(LocalStackHarness stack)
    {
        await stack.Services.GetRequiredService<BackfillTrigger>().HandleAsync(
            new TaskDelivery(JsonSerializer.SerializeToElement(new { }), "install-task", 0), CancellationToken.None);
        var task = stack.Services.GetRequiredService<BackfillTask>();
        foreach (var payload in await ReverseImageSearch.Tests.Local.Tasks.QueuedPayloads.ReadAsync(stack.Services, BackfillCoordinator.BackfillTaskFunction))
        {
            await task.HandleAsync(new TaskDelivery(payload, "queued", 0), CancellationToken.None);
        }
    }

    private static async Task<(LocalStackHarness Stack, RecordingVectorIndex Index, PausingObjectStore Store)> StackAsync(
        string backend, bool matchCrops, Dictionary<string, byte[]>? images = null)
    {
        var index = new RecordingVectorIndex();
        PausingObjectStore? store = null;
        var stack = LocalStackHarness.Create(
            imageCount: 0,
            new Dictionary<string, string?> { ["INDEX_BACKEND"] = backend, ["MATCH_CROPS"] = matchCrops ? "true" : "false", ["BATCH_SIZE"] = "10" },
            services => services
                .AddSingleton<IImageEmbedder>(new FakeViewsEmbedder(matchCrops))
                .AddSingleton<IVectorIndexService>(index)
                .AddSingleton<IObjectStore>(sp => store = new PausingObjectStore(sp.GetRequiredService<LocalObjectStore>())));
        foreach (var (name, content) in images ?? [])
        {
            stack.AddImage(name, content);
        }

        await stack.StartAsync(run: false);
        _ = stack.Services.GetRequiredService<IObjectStore>();
        return (stack, index, store!);
    }

    /// <summary>
    /// An embedder whose input names what it is: "wide:n" (all three views), "square:n" (the zoom only) or anything
    /// else (not an image). Views only for stored images (EmbedForIndexAsync) and only with MATCH_CROPS, as the real one.
    /// </summary>
    private sealed class FakeViewsEmbedder(bool matchCrops) : IImageEmbedder
    {
        public static readonly byte[] Unusable = "not a picture"u8.ToArray();

        public int Dimensions => 4;

        public static byte[] Wide(int n) => Encoding.UTF8.GetBytes($"wide:{n}");

        public static byte[] Square(int n) => Encoding.UTF8.GetBytes($"square:{n}");

        public static float[] ImageVector(int n) => [n, 0, 0, 0];

        public static float[] ViewVector(int n, string view) => [n, ImageViews.Names.ToList().IndexOf(view) + 1, 0, 0];

        public Task<IReadOnlyList<EmbeddingResult>> EmbedAsync(IReadOnlyList<ReadOnlyMemory<byte>> images, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<EmbeddingResult>>(images.Select(i => Embed(i, withViews: false)).ToArray());

        public Task<IReadOnlyList<EmbeddingResult>> EmbedForIndexAsync(IReadOnlyList<ReadOnlyMemory<byte>> images, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<EmbeddingResult>>(images.Select(i => Embed(i, withViews: matchCrops)).ToArray());

        private static EmbeddingResult Embed(ReadOnlyMemory<byte> image, bool withViews)
        {
            var parts = Encoding.UTF8.GetString(image.Span).Split(':');
            if (parts.Length != 2 || parts[0] is not ("wide" or "square"))
            {
                return EmbeddingResult.Rejected("not a picture");
            }

            var n = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
            var views = !withViews ? [] : parts[0] == "wide" ? ImageViews.Names : [ImageViews.CenterZoom];
            return EmbeddingResult.Success(ImageVector(n)) with { Views = views.Select(v => new ImageView(v, ViewVector(n, v))).ToArray() };
        }
    }

    /// <summary>An index that records its upsert and removal calls and holds what they leave; nothing else is asked of it.</summary>
    private sealed class RecordingVectorIndex : IVectorIndexService
    {
        private readonly ConcurrentDictionary<string, IndexDatapoint> _held = new(StringComparer.Ordinal);

        public List<IReadOnlyList<IndexDatapoint>> Upserts { get; } = [];

        public List<IReadOnlyList<string>> Removals { get; } = [];

        public IReadOnlyCollection<string> Ids => _held.Keys.ToArray();

        public float[] Vector(string id) => _held[id].FeatureVector;

        /// <summary>Puts datapoints in without recording a call, as an earlier installation's writes left them.</summary>
        public void Hold(IEnumerable<IndexDatapoint> datapoints)
        {
            foreach (var datapoint in datapoints)
            {
                _held[datapoint.DatapointId] = datapoint;
            }
        }

        public Task UpsertDatapointsAsync(string index, IReadOnlyList<IndexDatapoint> datapoints, CancellationToken cancellationToken = default)
        {
            lock (Upserts)
            {
                Upserts.Add(datapoints.ToArray());
            }

            Hold(datapoints);
            return Task.CompletedTask;
        }

        public Task RemoveDatapointsAsync(string index, IReadOnlyList<string> datapointIds, CancellationToken cancellationToken = default)
        {
            lock (Removals)
            {
                Removals.Add(datapointIds.ToArray());
            }

            foreach (var id in datapointIds)
            {
                _held.TryRemove(id, out _);
            }

            return Task.CompletedTask;
        }

        public Task<LongRunningOperation> CreateIndexAsync(IndexDefinition definition, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<LongRunningOperation> GetOperationAsync(string operationName, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<LongRunningOperation> CreateIndexEndpointAsync(string displayName, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<LongRunningOperation> DeployIndexAsync(string indexEndpoint, DeployedIndexSpec deployedIndex, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public Task<IndexEndpointInfo> GetIndexEndpointAsync(string indexEndpoint, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<IReadOnlyList<IndexDatapoint>> ReadDatapointsAsync(
            string publicEndpointDomainName, string indexEndpoint, string deployedIndexId, IReadOnlyList<string> datapointIds, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public Task<IReadOnlyList<QueryNeighbors>> FindNeighborsAsync(
            string publicEndpointDomainName, string indexEndpoint, string deployedIndexId, IReadOnlyList<NeighborQuery> queries, int neighborCount,
            CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();
    }
}
