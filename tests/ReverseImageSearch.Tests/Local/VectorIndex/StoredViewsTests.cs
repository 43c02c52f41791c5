using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.Storage;
using ReverseImageSearch.Local.VectorIndex;
using ReverseImageSearch.Tests.Local.Fakes;
using ReverseImageSearch.Tests.Local.Tasks;

namespace ReverseImageSearch.Tests.Local.VectorIndex;

/// <summary>
/// MATCH_CROPS on both local engines (the Vertex AI-style service and the Firestore-style collection): an image's
/// views answer for the image, once, under its id, with the best distance of its datapoints.
/// </summary>
[TestFixture(EngineKind.VertexStyle)]
[TestFixture(EngineKind.CollectionStyle)]
public class StoredViewsTests(StoredViewsTests.EngineKind kind)
{
    private const int Dimensions = 16;
    private const string Bucket = "demo-ext-ris";
    private const string DeployedId = "ext_ris_index";

    private TempDirectory _temp = null!;

    public enum EngineKind
    {
        VertexStyle,
        CollectionStyle,
    }

    [SetUp]
    public void SetUp() => _temp = new TempDirectory();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    [Test]
    public async Task AQueryEqualToAViewAnswersItsImageOnceUnderItsIdWithTheViewsDistance()
    {
        var random = new Random(5);
        var images = Images(random, 40, "shop");
        await using var engine = await OpenAsync();
        await engine.UpsertAsync(images.SelectMany(image => image.Datapoints).ToList());
        var target = images[17];
        var view = target.Views[1];

        var answer = await engine.FindAsync(new NeighborQuery("q", view.Vector), 10);

        Assert.That(answer[0].DatapointId, Is.EqualTo(target.Name));
        Assert.That(answer[0].Distance, Is.EqualTo(0).Within(1e-5), "the view's distance (cosine distance to itself), not the image's own");
        Assert.That(CosineDistance(view.Vector, target.Vector), Is.GreaterThan(0.01), "the image's own vector is farther than its view");
        Assert.That(answer.Count(n => n.DatapointId == target.Name), Is.EqualTo(1));
        Assert.That(answer.Any(n => ImageViews.IsView(n.DatapointId)), Is.False, "a view never answers under its own id");
    }

    [TestCase(1)]
    [TestCase(10)]
    [TestCase(39)]
    public async Task KDistinctImagesAnswerEachAtItsBestDistanceNearestFirst(int k)
    {
        var random = new Random(k);
        var images = Images(random, 40, "shop");
        await using var engine = await OpenAsync();
        await engine.UpsertAsync(images.SelectMany(image => image.Datapoints).ToList());
        var query = RandomVector(random);

        var answer = await engine.FindAsync(new NeighborQuery("q", query), k);

        // Fewer images than the smallest shortlist: every image is rescored, so the answer is the exact best per image.
        var expected = images
            .Select(image => (image.Name, Distance: image.Datapoints.Min(d => CosineDistance(query, d.FeatureVector))))
            .OrderBy(item => item.Distance)
            .Take(k)
            .ToList();
        Assert.That(answer.Select(n => n.DatapointId), Is.EqualTo(expected.Select(e => e.Name)));
        Assert.That(answer.Select(n => n.Distance), Is.EqualTo(expected.Select(e => e.Distance)).Within(1e-5));
    }

    [Test]
    public async Task AFolderSearchRescoresTheFoldersImagesOnlyAndStillAnswersK()
    {
        var random = new Random(8);
        var inside = Images(random, 30, "shop/dresses");
        var outside = Images(random, 30, "shop/shoes");
        await using var engine = await OpenAsync();
        await engine.UpsertAsync([.. inside.SelectMany(image => image.Datapoints), .. outside.SelectMany(image => image.Datapoints)]);
        // The nearest datapoint of all is a view of an image outside the folder.
        var query = outside[3].Views[0].Vector;

        var answer = await engine.FindAsync(new NeighborQuery("q", query, "shop/dresses"), 12);
        var everywhere = await engine.FindAsync(new NeighborQuery("q", query), 12);

        var expected = inside
            .Select(image => (image.Name, Distance: image.Datapoints.Min(d => CosineDistance(query, d.FeatureVector))))
            .OrderBy(item => item.Distance)
            .Take(12)
            .ToList();
        Assert.That(answer.Select(n => n.DatapointId), Is.EqualTo(expected.Select(e => e.Name)));
        Assert.That(answer.Select(n => n.Distance), Is.EqualTo(expected.Select(e => e.Distance)).Within(1e-5));
        Assert.That(everywhere[0].DatapointId, Is.EqualTo(outside[3].Name), "without the folder the view's image is nearest");
    }

    [Test]
    public async Task ViewsSurviveARestart()
    {
        var random = new Random(13);
        var images = Images(random, 20, "a");
        var query = images[4].Views[2].Vector;
        await using (var engine = await OpenAsync())
        {
            await engine.UpsertAsync(images.SelectMany(image => image.Datapoints).ToList());
        }

        await using var reopened = await OpenAsync();
        var answer = await reopened.FindAsync(new NeighborQuery("q", query), 3);

        Assert.That(answer[0].DatapointId, Is.EqualTo(images[4].Name));
        Assert.That(answer[0].Distance, Is.EqualTo(0).Within(1e-5), "the view came back");
        Assert.That(answer.Select(n => n.DatapointId).Distinct().Count(), Is.EqualTo(3));
    }

    [Test]
    public async Task RemovingAllIdsRemovesTheViewsAndAViewWithoutItsImageNeverAnswers()
    {
        var random = new Random(21);
        var images = Images(random, 20, "a");
        await using var engine = await OpenAsync();
        await engine.UpsertAsync(images.SelectMany(image => image.Datapoints).ToList());
        var removed = images[6];
        var orphaned = images[7];

        await engine.RemoveAsync(ImageViews.AllIds(removed.Name));
        await engine.RemoveAsync([orphaned.Name]);
        var afterRemoval = await engine.FindAsync(new NeighborQuery("q", orphaned.Views[0].Vector), 20);
        // The removed image comes back without views: its views went with AllIds.
        await engine.UpsertAsync([removed.Datapoints[0]]);
        var readded = await engine.FindAsync(new NeighborQuery("q", removed.Views[0].Vector), 20);

        Assert.That(afterRemoval.Select(n => n.DatapointId), Does.Not.Contain(orphaned.Name), "a view whose image is gone never answers");
        Assert.That(afterRemoval, Has.Count.EqualTo(18));
        Assert.That(afterRemoval.Any(n => ImageViews.IsView(n.DatapointId)), Is.False);
        var match = readded.Single(n => n.DatapointId == removed.Name);
        Assert.That(match.Distance, Is.EqualTo(CosineDistance(removed.Views[0].Vector, removed.Vector)).Within(1e-5), "the image's own distance only");
    }

    [Test]
    public async Task ReadDatapointsReadsImagesNotViews()
    {
        var random = new Random(2);
        var images = Images(random, 3, "a");
        await using var engine = await OpenAsync();
        await engine.UpsertAsync(images.SelectMany(image => image.Datapoints).ToList());

        var read = await engine.ReadAsync([images[1].Name, ImageViews.Id(images[1].Name, ImageViews.CenterZoom)]);

        Assert.That(read.Select(d => d.DatapointId), Is.EqualTo(new[] { images[1].Name }));
        Assert.That(CosineDistance(read[0].FeatureVector, images[1].Vector), Is.EqualTo(0).Within(1e-6));
    }

    [Test]
    public async Task WithNoViewsLeftTheAnswerIsExactlyTheAnswerWithout()
    {
        var random = new Random(34);
        var images = Images(random, 50, "a");
        var query = RandomVector(random);
        await using var engine = await OpenAsync();
        await engine.UpsertAsync(images.Select(image => image.Datapoints[0]).ToList());
        var before = await engine.FindAsync(new NeighborQuery("q", query), 10);

        await engine.UpsertAsync(images.SelectMany(image => image.Datapoints.Skip(1)).ToList());
        var withViews = await engine.FindAsync(new NeighborQuery("q", query), 10);
        await engine.RemoveAsync(images.SelectMany(image => ImageViews.AllIds(image.Name).Skip(1)).ToList());
        var after = await engine.FindAsync(new NeighborQuery("q", query), 10);

        Assert.That(withViews, Is.Not.EqualTo(before), "the views change the answer while stored");
        Assert.That(after, Is.EqualTo(before), "the same neighbours at the same distances, to the bit");
    }

    private static double Dot(float[] a, float[] b) => a.Zip(b, (x, y) => (double)x * y).Sum();

    private static double CosineDistance(float[] a, float[] b) => 1 - (Dot(a, b) / Math.Sqrt(Dot(a, a) * Dot(b, b)));

    private static float[] RandomVector(Random random) =>
        Enumerable.Range(0, Dimensions).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();

    /// <summary>Images with all three views, each view its own direction (as a separate inference is).</summary>
    private static List<StoredImage> Images(Random random, int count, string folder) =>
        Enumerable.Range(0, count)
            .Select(i => new StoredImage($"{folder}/{i}.jpg", RandomVector(random), [.. ImageViews.Names.Select(name => new ImageView(name, RandomVector(random)))]))
            .ToList();

    private async Task<Engine> OpenAsync()
    {
        if (kind == EngineKind.CollectionStyle)
        {
            var collection = new LocalCollectionVectorIndex(_temp.Sub("collection"), DistanceMeasure.Cosine, NullLogger<LocalCollectionVectorIndex>.Instance);
            await collection.CreateIndexAsync(Definition());
            return new Engine(collection, collection.IndexName, "", collection.Dispose);
        }

        var store = new LocalObjectStore(new Dictionary<string, string>(), _temp.Sub("buckets"), NullLogger<LocalObjectStore>.Instance);
        await store.WriteAsync(Bucket, "datapoints/empty.json", Encoding.UTF8.GetBytes(""), "application/json");
        var service = new LocalVectorIndexService(
            "demo", "us-central1", _temp.Sub("vector-data"), store, new InMemoryTaskQueue(), NullLogger<LocalVectorIndexService>.Instance);
        var endpointFile = _temp.Sub("endpoint.txt");
        if (File.Exists(endpointFile))
        {
            var names = await File.ReadAllLinesAsync(endpointFile);
            return new Engine(service, names[0], names[1], () => service.DisposeAsync().AsTask().GetAwaiter().GetResult());
        }

        var index = (await WaitAsync(service, await service.CreateIndexAsync(Definition()))).ResponseResourceName!;
        var endpoint = (await service.CreateIndexEndpointAsync("ris")).ResponseResourceName!;
        await WaitAsync(service, await service.DeployIndexAsync(endpoint, new(DeployedId, index, "e2-standard-2", "ACCELERATOR_TYPE_UNSPECIFIED", 1, 1, 1)));
        await File.WriteAllLinesAsync(endpointFile, [index, endpoint]);
        return new Engine(service, index, endpoint, () => service.DisposeAsync().AsTask().GetAwaiter().GetResult());
    }

    private static IndexDefinition Definition() =>
        new("ris", $"gs://{Bucket}/datapoints", Dimensions, 100, DistanceMeasure.Cosine, true, IndexShardSize.Small, IndexAlgorithm.BruteForce);

    private static async Task<LongRunningOperation> WaitAsync(IVectorIndexService service, LongRunningOperation operation)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!operation.Done)
        {
            await Task.Delay(20, deadline.Token);
            operation = await service.GetOperationAsync(operation.Name);
        }

        Assert.That(operation.Error, Is.Null);
        return operation;
    }

    private sealed record StoredImage(string Name, float[] Vector, IReadOnlyList<ImageView> Views)
    {
        public IReadOnlyList<IndexDatapoint> Datapoints =>
            [IndexDatapoint.ForImage(Name, Vector), .. Views.Select(view => IndexDatapoint.ForView(Name, view))];
    }

    /// <summary>One local engine through the port, as the functions use it.</summary>
    private sealed class Engine(IVectorIndexService service, string index, string endpoint, Action dispose) : IAsyncDisposable
    {
        public Task UpsertAsync(IReadOnlyList<IndexDatapoint> datapoints) => service.UpsertDatapointsAsync(index, datapoints);

        public Task RemoveAsync(IReadOnlyList<string> ids) => service.RemoveDatapointsAsync(index, ids);

        public async Task<IReadOnlyList<Neighbor>> FindAsync(NeighborQuery query, int k) =>
            (await service.FindNeighborsAsync("localhost", endpoint, DeployedId, [query], k)).Single().Neighbors;

        public Task<IReadOnlyList<IndexDatapoint>> ReadAsync(IReadOnlyList<string> ids) =>
            service.ReadDatapointsAsync("localhost", endpoint, DeployedId, ids);

        public ValueTask DisposeAsync()
        {
            dispose();
            return ValueTask.CompletedTask;
        }
    }
}
