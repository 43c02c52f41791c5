using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Gcp.Firestore;
using ReverseImageSearch.Local.VectorIndex;
using ReverseImageSearch.Tests.Gcp;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Firestore;

/// <summary>
/// The Firestore vector adapter against Google's Firestore emulator, through the contract server so every request
/// is also checked against the Firestore discovery document. The emulator has no Admin API: index creation is
/// answered by the test, after the same validation.
/// </summary>
[NonParallelizable]
public sealed class FirestoreVectorIndexServiceTests
{
    private const string Project = "demo-vectors";
    private const string CommitMethod = "firestore.projects.databases.documents.commit";
    private const string RunQueryMethod = "firestore.projects.databases.documents.runQuery";
    private const string CreateIndexMethod = "firestore.projects.databases.collectionGroups.indexes.create";
    private const string ListIndexesMethod = "firestore.projects.databases.collectionGroups.indexes.list";
    private const string GetOperationMethod = "firestore.projects.databases.operations.get";

    private ContractServer _server = null!;
    private ServiceProvider? _services;

    [OneTimeSetUp]
    public async Task StartServerAsync() => _server = await ContractServer.StartAsync("firestore.v1");

    [OneTimeTearDown]
    public async Task StopServerAsync() => await _server.DisposeAsync();

    [SetUp]
    public async Task ResetAsync()
    {
        var host = await FirestoreEmulator.EnsureStartedAsync();
        await FirestoreEmulator.WipeAsync(Project);
        _server.Reset();
        _server.Fallback = FirestoreEmulator.Forward(host);
    }

    [TearDown]
    public void NoViolations()
    {
        _services?.Dispose();
        _services = null;
        _server.AssertNoViolations();
    }

    private static ExtensionOptions Options(DistanceMeasure measure, bool matchCrops = false) => new()
    {
        MatchCrops = matchCrops,
        ProjectId = Project,
        InstanceId = "ris",
        Location = "us-central1",
        ImageBucket = "images",
        IndexBackend = IndexBackend.Firestore,
        DistanceMeasure = measure,
    };

    private IVectorIndexService Build(DistanceMeasure measure = DistanceMeasure.DotProduct, bool matchCrops = false)
    {
        _services = GcpTestHost.Build(_server, extension: Options(measure, matchCrops));
        var service = _services.GetRequiredService<IVectorIndexService>();
        Assert.That(service, Is.InstanceOf<FirestoreVectorIndexService>(), "INDEX_BACKEND=firestore picks the Firestore adapter");
        return service;
    }

    private static string Collection => new CoordinationDocuments(Options(DistanceMeasure.DotProduct)).VectorCollection;

    private static Task<IReadOnlyList<QueryNeighbors>> FindAsync(IVectorIndexService service, float[] query, int k) =>
        service.FindNeighborsAsync("", "", "", [new NeighborQuery("0", query)], k);

    [Test]
    public async Task ObjectNamesOfEveryShapeComeBackExactlyAsTheirIds()
    {
        var service = Build();
        string[] names = ["a.jpg", "folder/b c.png", "__reserved.jpg", ".", "..", "é/ü?#%.webp", "x%2Fy.jpg", "x/y.jpg"];
        var datapoints = names.Select((n, i) => new IndexDatapoint(n, OneHot(names.Length, i))).ToArray();
        await service.UpsertDatapointsAsync(Collection, datapoints);

        for (var i = 0; i < names.Length; i++)
        {
            var found = (await FindAsync(service, OneHot(names.Length, i), 1))[0].Neighbors;
            Assert.That(found.Single().DatapointId, Is.EqualTo(names[i]), "nearest to its own vector, under its own name");
            Assert.That(found.Single().Distance, Is.EqualTo(1).Within(1e-6), "dot product of a unit vector with itself");
        }

        var all = (await FindAsync(service, OneHot(names.Length, 0), 100))[0].Neighbors;
        Assert.That(all.Select(n => n.DatapointId), Is.EquivalentTo(names), "no two names collided on one document");
    }

    [TestCase(DistanceMeasure.Cosine)]
    [TestCase(DistanceMeasure.SquaredL2)]
    [TestCase(DistanceMeasure.DotProduct)]
    public async Task DistancesFollowTheInProcessIndexConvention(DistanceMeasure measure)
    {
        var service = Build(measure);
        var random = new Random(7 + (int)measure);
        var datapoints = Enumerable.Range(0, 300).Select(i => new IndexDatapoint($"img-{i:D3}.jpg", RandomVector(random, 24))).ToArray();
        await service.UpsertDatapointsAsync(Collection, datapoints);
        using var local = new InProcessVectorIndex(24, measure);
        local.Upsert(datapoints);

        for (var q = 0; q < 5; q++)
        {
            var query = RandomVector(random, 24);
            var expected = local.Search(query, 20);
            var actual = (await FindAsync(service, query, 20))[0].Neighbors;
            Assert.That(actual.Select(n => n.DatapointId), Is.EqualTo(expected.Select(m => m.Id)), $"same order ({measure}, query {q})");
            for (var i = 0; i < expected.Count; i++)
            {
                Assert.That(actual[i].Distance, Is.EqualTo(expected[i].Distance).Within(1e-4), $"{measure}: distance of {expected[i].Id}");
            }
        }
    }

    [Test]
    public async Task WritesAboveTheCommitLimitAreSplitIntoCommitsAndAllLand()
    {
        var service = Build(DistanceMeasure.SquaredL2);
        const int count = 1201;
        var datapoints = Enumerable.Range(0, count).Select(i => new IndexDatapoint($"bulk/{i:D4}.jpg", [i, 1, 0, 0])).ToArray();
        await service.UpsertDatapointsAsync(Collection, datapoints);

        var commits = _server.RequestsOf(CommitMethod);
        var perCommit = commits.Select(c => c.Json.GetProperty("writes").GetArrayLength()).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(perCommit.Sum(), Is.EqualTo(count));
            Assert.That(perCommit.Max(), Is.LessThanOrEqualTo(500), "Firestore's writes per commit");
            Assert.That(commits, Has.Count.EqualTo((count + 99) / 100), "the default 100 vectors per commit");
        });

        // The far end of the set is there, and the nearest 1000 to the first are the first 1000.
        var last = (await FindAsync(service, [count - 1, 1, 0, 0], 1))[0].Neighbors.Single();
        Assert.That(last.DatapointId, Is.EqualTo($"bulk/{count - 1:D4}.jpg"));
        var nearest = (await FindAsync(service, [0, 1, 0, 0], 1000))[0].Neighbors;
        Assert.That(nearest, Has.Count.EqualTo(1000));
        Assert.That(nearest.Select(n => n.DatapointId), Is.EqualTo(Enumerable.Range(0, 1000).Select(i => $"bulk/{i:D4}.jpg")));
        Assert.That(nearest[999].Distance, Is.EqualTo(999d * 999d).Within(1e-3), "squared Euclidean distance");
    }

    [Test]
    public async Task ARemovedImageIsNeverReturnedAgain()
    {
        var service = Build();
        await service.UpsertDatapointsAsync(Collection, [new("keep-1.jpg", [1, 0, 0]), new("gone.jpg", [0, 1, 0]), new("keep-2.jpg", [0, 0, 1])]);
        await service.RemoveDatapointsAsync(Collection, ["gone.jpg", "never-there.jpg"]);

        var found = (await FindAsync(service, [0, 1, 0], 10))[0].Neighbors.Select(n => n.DatapointId).ToArray();
        Assert.That(found, Is.EquivalentTo(new[] { "keep-1.jpg", "keep-2.jpg" }));

        // Written again (an image uploaded anew under the same name) it comes back once.
        await service.UpsertDatapointsAsync(Collection, [new("gone.jpg", [0, 1, 0])]);
        Assert.That((await FindAsync(service, [0, 1, 0], 10))[0].Neighbors.Count(n => n.DatapointId == "gone.jpg"), Is.EqualTo(1));
    }

    [Test]
    public async Task SeveralQueriesAnswerInQueryOrder()
    {
        var service = Build();
        await service.UpsertDatapointsAsync(Collection, [new("x.jpg", [1, 0]), new("y.jpg", [0, 1])]);
        var answers = await service.FindNeighborsAsync("", "", "", [new("0", [0, 1]), new("1", [1, 0])], 1);
        Assert.That(answers.Select(a => (a.Id, a.Neighbors[0].DatapointId)), Is.EqualTo(new[] { ("0", "y.jpg"), ("1", "x.jpg") }));
        Assert.That(_server.RequestsOf(RunQueryMethod), Has.Count.EqualTo(2), "one findNearest per query image");
    }

    // The emulator runs the prefilter as Firestore does; it needs no index (the composite index is deploy.sh's, tested there).
    [Test]
    public async Task AFolderSearchPrefiltersOnTheFoldersAndStillAnswersAsManyAsAsked()
    {
        var service = Build();
        var random = new Random(5);
        var datapoints = Enumerable.Range(0, 60)
            .Select(i => IndexDatapoint.ForImage(i % 3 == 0 ? $"shop/dresses/{i}.jpg" : i % 3 == 1 ? $"shop/dresses/red/{i}.jpg" : $"other/{i}.jpg", RandomVector(random, 8)))
            .Append(IndexDatapoint.ForImage("shop/dressesx.jpg", RandomVector(random, 8)))
            .ToArray();
        await service.UpsertDatapointsAsync(Collection, datapoints);
        var query = RandomVector(random, 8);
        await service.UpsertDatapointsAsync(Collection, [IndexDatapoint.ForImage("other/nearest.jpg", query)]);

        var answers = await service.FindNeighborsAsync("", "", "", [new NeighborQuery("q", query, "shop/dresses"), new NeighborQuery("all", query)], 15);

        var expected = datapoints.Where(d => d.DatapointId.StartsWith("shop/dresses/", StringComparison.Ordinal))
            .OrderByDescending(d => d.FeatureVector.Zip(query, (a, b) => (double)a * b).Sum())
            .Take(15)
            .Select(d => d.DatapointId);
        Assert.That(answers[0].Neighbors.Select(n => n.DatapointId), Is.EqualTo(expected));
        Assert.That(answers[1].Neighbors[0].DatapointId, Is.EqualTo("other/nearest.jpg"));
        Assert.That(_server.RequestsOf(RunQueryMethod).Count(r => r.Json.GetProperty("structuredQuery").TryGetProperty("where", out _)), Is.EqualTo(1));
    }

    /// <summary>
    /// MATCH_CROPS: a view is a document of its own; an image answers once, under its id, with the best distance among
    /// its documents, and k counts images (findNearest is asked for four per image). Reading by path gives the image's own.
    /// </summary>
    [Test]
    public async Task WithMatchCropsAnImageWhoseViewIsNearestAnswersOnceUnderItsIdWithThatDistance()
    {
        var service = Build(matchCrops: true);
        await service.UpsertDatapointsAsync(Collection,
        [
            .. Stored("a.jpg", [1, 0, 0, 0], (ImageViews.CenterZoom, [0, 1, 0, 0]), (ImageViews.StartSquare, [0, 0.9f, 0.1f, 0])),
            .. Stored("b.jpg", [0, 0.8f, 0, 0]),
            .. Stored("c.jpg", [0, 0.6f, 0, 0], (ImageViews.CenterZoom, [0, 0.7f, 0, 0])),
            .. Stored("d.jpg", [0, 0.3f, 0, 0]),
        ]);

        var found = (await FindAsync(service, [0, 1, 0, 0], 3))[0].Neighbors;

        Assert.That(found.Select(n => n.DatapointId), Is.EqualTo(new[] { "a.jpg", "b.jpg", "c.jpg" }));
        Assert.That(found.Select(n => n.Distance), Is.EqualTo(new[] { 1, 0.8, 0.7 }).Within(1e-6), "each image's nearest datapoint");
        Assert.That(_server.RequestsOf(RunQueryMethod).Single().Json.GetProperty("structuredQuery").GetProperty("findNearest").GetProperty("limit").GetInt32(),
            Is.EqualTo(12), "four documents per image at most");
        var read = await service.ReadDatapointsAsync("", "", "", ["a.jpg"]);
        Assert.That(read.Select(d => (d.DatapointId, string.Join(",", d.FeatureVector))), Is.EqualTo(new[] { ("a.jpg", "1,0,0,0") }), "the image's own vector");
    }

    /// <summary>MATCH_CROPS: views carry their image's folders, so a folder search still answers k images of the folder.</summary>
    [Test]
    public async Task WithMatchCropsAFolderSearchStillAnswersAsManyImagesAsAsked()
    {
        var service = Build(matchCrops: true);
        var random = new Random(11);
        var query = RandomVector(random, 8);
        var datapoints = Enumerable.Range(0, 30)
            .SelectMany(i => Stored(
                i % 2 == 0 ? $"shop/{i}.jpg" : $"other/{i}.jpg",
                RandomVector(random, 8),
                (ImageViews.CenterZoom, RandomVector(random, 8)),
                (ImageViews.StartSquare, RandomVector(random, 8)),
                (ImageViews.EndSquare, RandomVector(random, 8))))
            .ToArray();
        await service.UpsertDatapointsAsync(Collection, datapoints);

        var found = (await service.FindNeighborsAsync("", "", "", [new NeighborQuery("q", query, "shop")], 5))[0].Neighbors;

        var expected = datapoints.Where(d => d.DatapointId.StartsWith("shop/", StringComparison.Ordinal))
            .GroupBy(d => ImageViews.ImageOf(d.DatapointId))
            .Select(g => (Image: g.Key, Best: g.Max(d => d.FeatureVector.Zip(query, (a, b) => (double)a * b).Sum())))
            .OrderByDescending(x => x.Best)
            .Take(5)
            .ToArray();
        Assert.That(found.Select(n => n.DatapointId), Is.EqualTo(expected.Select(x => x.Image)));
        Assert.That(found.Select(n => n.Distance), Is.EqualTo(expected.Select(x => x.Best)).Within(1e-4));
    }

    private static IndexDatapoint[] Stored(string image, float[] vector, params (string View, float[] Vector)[] views) =>
        ImageViews.Datapoints(image, EmbeddingResult.Success(vector) with { Views = views.Select(v => new ImageView(v.View, v.Vector)).ToArray() }).ToArray();

    [Test]
    public async Task ReadingStoredVectorsGivesThemBackWithTheirFoldersAndLeavesOutMissingOnes()
    {
        var service = Build();
        await service.UpsertDatapointsAsync(Collection, [IndexDatapoint.ForImage("a/b c/x%2F.jpg", [0.25f, -1, 3]), IndexDatapoint.ForImage("top.jpg", [1, 0, 0])]);

        var read = await service.ReadDatapointsAsync("", "", "", ["a/b c/x%2F.jpg", "missing/y.jpg", "top.jpg"]);

        Assert.That(read.Select(d => (d.DatapointId, string.Join(",", d.FeatureVector), string.Join("|", d.Folders))),
            Is.EquivalentTo(new[] { ("a/b c/x%2F.jpg", "0.25,-1,3", "a|a/b c"), ("top.jpg", "1,0,0", "") }));
    }

    [Test]
    public async Task CreatingTheIndexAsksForFlatVectorIndexesOfTheDimensionPlainAndByFolderAndWaitsForThePlainOne()
    {
        var service = Build();
        var index = $"projects/{Project}/databases/(default)/collectionGroups/vectors-ris/indexes/CICAgOjXh4EK";
        var operation = $"projects/{Project}/databases/(default)/operations/S1ZQbkxRTzZ1";
        _server.Handle(CreateIndexMethod, _ => Reply.Ok(new { name = operation, metadata = new { index } }));
        _server.Handle(GetOperationMethod, _ => Reply.Ok(new { name = operation, done = true, response = new { name = index, state = "READY" } }));

        var started = await service.CreateIndexAsync(new IndexDefinition("ext-ris-index", "", 1280, 100, DistanceMeasure.DotProduct, false, IndexShardSize.Small, IndexAlgorithm.BruteForce));
        var done = await service.GetOperationAsync(started.Name);

        var creates = _server.RequestsOf(CreateIndexMethod);
        var body = creates[0].Json;
        Assert.Multiple(() =>
        {
            Assert.That(started.Done, Is.False);
            Assert.That(done.Done, Is.True);
            Assert.That(done.ResponseResourceName, Is.EqualTo(index));
            Assert.That(creates, Has.Count.EqualTo(2));
            Assert.That(creates.Select(c => c.RawPath), Has.All.EndWith("/collectionGroups/vectors-ris/indexes"));
            Assert.That(body.GetProperty("queryScope").GetString(), Is.EqualTo("COLLECTION"));
            var field = body.GetProperty("fields").EnumerateArray().Single();
            Assert.That(field.GetProperty("fieldPath").GetString(), Is.EqualTo("embedding"));
            Assert.That(field.GetProperty("vectorConfig").GetProperty("dimension").GetInt32(), Is.EqualTo(1280));
            // The folder search's prefilter needs the folders field ahead of the vector in an index of its own.
            Assert.That(creates[1].Json.GetProperty("fields").GetRawText(), Is.EqualTo(
                """[{"fieldPath":"folders","arrayConfig":"CONTAINS"},{"fieldPath":"embedding","vectorConfig":{"dimension":1280,"flat":{}}}]"""));
        });
    }

    [Test]
    public async Task AnIndexThatDeployShMadeAlreadyIsFoundInsteadOfFailing()
    {
        var service = Build();
        var index = $"projects/{Project}/databases/(default)/collectionGroups/vectors-ris/indexes/CICAgOjXh4EK";
        _server.Handle(CreateIndexMethod, _ => Reply.Error(409, "ALREADY_EXISTS", "Index already exists"));
        _server.Handle(ListIndexesMethod, _ => Reply.Ok(new
        {
            indexes = new object[]
            {
                new { name = index + "x", state = "READY", fields = new object[] { new { fieldPath = "embedding", vectorConfig = new { dimension = 512, flat = new { } } } } },
                new { name = index + "f", state = "READY", fields = new object[] { new { fieldPath = "folders", arrayConfig = "CONTAINS" }, new { fieldPath = "embedding", vectorConfig = new { dimension = 1280, flat = new { } } } } },
                new { name = index, state = "READY", fields = new object[] { new { fieldPath = "embedding", vectorConfig = new { dimension = 1280, flat = new { } } } } },
            },
        }));

        var found = await service.CreateIndexAsync(new IndexDefinition("ext-ris-index", "", 1280, 100, DistanceMeasure.DotProduct, false, IndexShardSize.Small, IndexAlgorithm.BruteForce));
        Assert.That((found.Done, found.Error, found.ResponseResourceName), Is.EqualTo((true, (OperationError?)null, index)));
    }

    [Test]
    public void ThereIsNoEndpointToCreateOrDeploy()
    {
        var service = Build();
        Assert.ThrowsAsync<NotSupportedException>(() => service.CreateIndexEndpointAsync("e"));
        Assert.ThrowsAsync<NotSupportedException>(() => service.GetIndexEndpointAsync("e"));
    }

    private static float[] OneHot(int dimensions, int at)
    {
        var vector = new float[dimensions];
        vector[at] = 1;
        return vector;
    }

    private static float[] RandomVector(Random random, int dimensions) =>
        Enumerable.Range(0, dimensions).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
}
