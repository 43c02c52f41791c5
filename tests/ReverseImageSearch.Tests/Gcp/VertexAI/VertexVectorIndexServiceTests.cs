using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp.VertexAI;

public sealed class VertexVectorIndexServiceTests : ContractTestBase
{
    private const string Location = "projects/demo-proj/locations/us-central1";
    private const string Index = Location + "/indexes/111";
    private const string Endpoint = Location + "/indexEndpoints/222";
    private const string Op = "{\"name\":\"" + Location + "/operations/9\",\"metadata\":{\"@type\":\"type.googleapis.com/google.cloud.aiplatform.v1.CreateIndexOperationMetadata\"}}";
    private ServiceProvider _services = null!;
    private IVectorIndexService _vertex = null!;

    [SetUp]
    public void CreateService()
    {
        _services = GcpTestHost.Build(Server, a => a.UpsertBatchSize = 100);
        _vertex = _services.GetRequiredService<IVectorIndexService>();
        // Nothing of this instance exists yet, unless a test says otherwise.
        Server.Handle(IndexesList, _ => Reply.Ok("{}"));
        Server.Handle(EndpointsList, _ => Reply.Ok("{}"));
    }

    private const string IndexesList = "aiplatform.projects.locations.indexes.list";
    private const string EndpointsList = "aiplatform.projects.locations.indexEndpoints.list";
    private const string IndexesCreate = "aiplatform.projects.locations.indexes.create";
    private const string EndpointsCreate = "aiplatform.projects.locations.indexEndpoints.create";

    private static IndexDefinition Definition => new("ext-ris-index", "gs://demo-proj-ext-ris/datapoints", 8, 100, DistanceMeasure.DotProduct, false, IndexShardSize.Small, IndexAlgorithm.BruteForce);

    // A 5xx, a reset or a timeout after indexes.create may come after Vertex AI accepted it: sending it again
    // could leave a second index that bills and that uninstall never finds.
    [TestCase(503)]
    [TestCase(500)]
    [TestCase(0)]
    public void CreateIndexIsSentOnceWhateverTheFailure(int status)
    {
        Server.FailNext(IndexesCreate, status == 0 ? Reply.Reset() : Reply.Error(status, GoogleApiErrorsStatus(status), "backend error"));
        Server.Handle(IndexesCreate, _ => Reply.Ok(Op));

        Assert.That(() => _vertex.CreateIndexAsync(Definition), Throws.InstanceOf<Exception>());
        Assert.That(Server.RequestsOf(IndexesCreate), Has.Count.EqualTo(1));
    }

    [Test]
    public void CreateIndexEndpointIsSentOnce()
    {
        Server.FailNext(EndpointsCreate, Reply.Error(503, "UNAVAILABLE", "backend error"));
        Server.Handle(EndpointsCreate, _ => Reply.Ok(Op));

        Assert.ThrowsAsync<ServiceException>(() => _vertex.CreateIndexEndpointAsync("ext-ris-endpoint"));
        Assert.That(Server.RequestsOf(EndpointsCreate), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task CreateIndexFollowsTheIndexAnEarlierSendMadeInsteadOfMakingAnother()
    {
        var creating = "{\"name\":\"" + Index + "/operations/77\",\"metadata\":{\"@type\":\"type.googleapis.com/google.cloud.aiplatform.v1.CreateIndexOperationMetadata\"}}";
        Server.Handle(IndexesList, r => Reply.Ok(r.QueryValue("filter") == "display_name=\"ext-ris-index\""
            ? "{\"indexes\":[{\"name\":\"" + Index + "\",\"displayName\":\"ext-ris-index\"}]}"
            : "{}"));
        Server.Handle("aiplatform.projects.locations.indexes.operations.list", _ => Reply.Ok(
            "{\"operations\":[{\"name\":\"" + Index + "/operations/76\",\"metadata\":{\"@type\":\"type.googleapis.com/google.cloud.aiplatform.v1.UpdateIndexOperationMetadata\"}}," + creating + "]}"));

        var op = await _vertex.CreateIndexAsync(Definition);

        Assert.That(op.Name, Is.EqualTo(Index + "/operations/77"));
        Assert.That(Server.RequestsOf(IndexesCreate), Is.Empty);
        Assert.That(Server.RequestsOf("aiplatform.projects.locations.indexes.operations.list").Single().RawPath, Is.EqualTo($"/v1/{Index}/operations"));
    }

    [Test]
    public void AnIndexLeftFromAnEarlierInstallationIsReportedNotReused()
    {
        Server.Handle(IndexesList, _ => Reply.Ok("{\"indexes\":[{\"name\":\"" + Index + "\",\"displayName\":\"ext-ris-index\"}]}"));
        Server.Handle("aiplatform.projects.locations.indexes.operations.list", _ => Reply.Ok("{}"));

        var e = Assert.ThrowsAsync<ServiceException>(() => _vertex.CreateIndexAsync(Definition));

        Assert.That(e!.ServiceMessage, Does.Contain(Index).And.Contain("uninstall"));
        Assert.That(Server.RequestsOf(IndexesCreate), Is.Empty);
    }

    [Test]
    public async Task CreateIndexEndpointReusesTheEndpointAnEarlierSendMade()
    {
        Server.Handle(EndpointsList, _ => Reply.Ok("{\"indexEndpoints\":[{\"name\":\"" + Endpoint + "\",\"displayName\":\"ext-ris-endpoint\"}]}"));

        var op = await _vertex.CreateIndexEndpointAsync("ext-ris-endpoint");

        Assert.That((op.Done, op.ResponseResourceName), Is.EqualTo((true, Endpoint)));
        Assert.That(Server.RequestsOf(EndpointsCreate), Is.Empty);
    }

    private static string GoogleApiErrorsStatus(int status) => ReverseImageSearch.Gcp.Http.GoogleApiErrors.StatusForHttp(status);

    [TearDown]
    public void DisposeServices() => _services.Dispose();

    [TestCase(IndexAlgorithm.BruteForce, DistanceMeasure.Cosine, true, IndexShardSize.Small, "bruteForceConfig", "COSINE_DISTANCE", "UNIT_L2_NORM", "SHARD_SIZE_SMALL")]
    [TestCase(IndexAlgorithm.TreeAh, DistanceMeasure.DotProduct, false, IndexShardSize.Medium, "treeAhConfig", "DOT_PRODUCT_DISTANCE", "NONE", "SHARD_SIZE_MEDIUM")]
    [TestCase(IndexAlgorithm.TreeAh, DistanceMeasure.SquaredL2, false, IndexShardSize.Large, "treeAhConfig", "SQUARED_L2_DISTANCE", "NONE", "SHARD_SIZE_LARGE")]
    [TestCase(IndexAlgorithm.BruteForce, DistanceMeasure.L1, false, IndexShardSize.Small, "bruteForceConfig", "L1_DISTANCE", "NONE", "SHARD_SIZE_SMALL")]
    public async Task CreateIndexSendsAStreamUpdateIndex(
        IndexAlgorithm algorithmValue, DistanceMeasure measure, bool normalize, IndexShardSize size, string algorithm, string distance, string norm, string shardSize)
    {
        Server.Handle("aiplatform.projects.locations.indexes.create", _ => Reply.Ok(Op));
        var op = await _vertex.CreateIndexAsync(new IndexDefinition("ext-ris-index", "gs://demo-proj-ext-ris/datapoints", 1280, 100, measure, normalize, size, algorithmValue));

        Assert.That((op.Name, op.Done, op.Error), Is.EqualTo(($"{Location}/operations/9", false, (OperationError?)null)));
        var request = Server.RequestsOf("aiplatform.projects.locations.indexes.create").Single();
        Assert.That(request.RawPath, Is.EqualTo($"/v1/{Location}/indexes"));
        var expected = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["displayName"] = "ext-ris-index",
            ["indexUpdateMethod"] = "STREAM_UPDATE",
            ["metadataSchemaUri"] = "gs://google-cloud-aiplatform/schema/matchingengine/metadata/nearest_neighbor_search_1.0.0.yaml",
            ["metadata"] = new Dictionary<string, object>
            {
                ["contentsDeltaUri"] = "gs://demo-proj-ext-ris/datapoints",
                ["isCompleteOverwrite"] = false,
                ["config"] = new Dictionary<string, object>
                {
                    ["dimensions"] = 1280,
                    ["approximateNeighborsCount"] = 100,
                    ["distanceMeasureType"] = distance,
                    ["featureNormType"] = norm,
                    ["shardSize"] = shardSize,
                    ["algorithmConfig"] = new Dictionary<string, object> { [algorithm] = new { } },
                },
            },
        });
        Assert.That(request.Json.GetRawText(), Is.EqualTo(expected));
    }

    [Test]
    public async Task GetOperationReadsDoneErrorAndResponse()
    {
        var answers = new Queue<string>(
        [
            Op,
            "{\"name\":\"" + Location + "/indexes/111/operations/9\",\"done\":true,\"response\":{\"@type\":\"type.googleapis.com/google.cloud.aiplatform.v1.Index\",\"name\":\"" + Index + "\"}}",
            "{\"name\":\"" + Location + "/indexes/111/operations/9\",\"done\":true,\"error\":{\"code\":8,\"message\":\"quota\"}}",
        ]);
        Server.Handle("aiplatform.projects.locations.operations.get", _ => Reply.Ok(answers.Dequeue()));
        Server.Handle("aiplatform.projects.locations.indexes.operations.get", _ => Reply.Ok(answers.Dequeue()));

        var pending = await _vertex.GetOperationAsync($"{Location}/operations/9");
        var done = await _vertex.GetOperationAsync($"{Index}/operations/9");
        var failed = await _vertex.GetOperationAsync($"{Index}/operations/9");

        Assert.Multiple(() =>
        {
            Assert.That(pending.Done, Is.False);
            Assert.That(done.Done, Is.True);
            Assert.That(done.ResponseResourceName, Is.EqualTo(Index));
            Assert.That(done.Error, Is.Null);
            Assert.That(failed.Error, Is.EqualTo(new OperationError(8, "quota")));
        });
        Assert.That(Server.Requests.Select(r => r.RawPath), Is.EqualTo(new[]
        {
            $"/v1/{Location}/operations/9", $"/v1/{Index}/operations/9", $"/v1/{Index}/operations/9",
        }));
    }

    [Test]
    public async Task CreateIndexEndpointAsksForAPublicEndpoint()
    {
        Server.Handle("aiplatform.projects.locations.indexEndpoints.create", _ => Reply.Ok(Op));
        var op = await _vertex.CreateIndexEndpointAsync("ext-ris-endpoint");
        Assert.That(op.Done, Is.False);
        var request = Server.RequestsOf("aiplatform.projects.locations.indexEndpoints.create").Single();
        Assert.That(request.RawPath, Is.EqualTo($"/v1/{Location}/indexEndpoints"));
        Assert.That(request.Json.GetRawText(), Is.EqualTo("""{"displayName":"ext-ris-endpoint","publicEndpointEnabled":true}"""));
    }

    [Test]
    public async Task DeployIndexOmitsTheAcceleratorWhenUnspecified()
    {
        Server.Handle("aiplatform.projects.locations.indexEndpoints.deployIndex", _ => Reply.Ok(Op));
        await _vertex.DeployIndexAsync(Endpoint, new DeployedIndexSpec("ext_ris_index", Index, "e2-standard-2", "ACCELERATOR_TYPE_UNSPECIFIED", 1, 1, 2));
        var request = Server.RequestsOf("aiplatform.projects.locations.indexEndpoints.deployIndex").Single();
        Assert.That(request.RawPath, Is.EqualTo($"/v1/{Endpoint}:deployIndex"));
        Assert.That(request.Json.GetRawText(), Is.EqualTo(
            "{\"deployedIndex\":{\"id\":\"ext_ris_index\",\"index\":\"" + Index + "\",\"dedicatedResources\":{\"machineSpec\":{\"machineType\":\"e2-standard-2\"},\"minReplicaCount\":1,\"maxReplicaCount\":2}}}"));
    }

    [Test]
    public async Task DeployIndexSendsAGivenAccelerator()
    {
        Server.Handle("aiplatform.projects.locations.indexEndpoints.deployIndex", _ => Reply.Ok(Op));
        await _vertex.DeployIndexAsync(Endpoint, new DeployedIndexSpec("ext_ris_index", Index, "n1-standard-16", "NVIDIA_TESLA_T4", 2, 1, 1));
        var spec = Server.RequestsOf("aiplatform.projects.locations.indexEndpoints.deployIndex").Single()
            .Json.GetProperty("deployedIndex").GetProperty("dedicatedResources").GetProperty("machineSpec");
        Assert.That(spec.GetRawText(), Is.EqualTo("""{"machineType":"n1-standard-16","acceleratorType":"NVIDIA_TESLA_T4","acceleratorCount":2}"""));
    }

    [Test]
    public async Task GetIndexEndpointReadsTheDomainAndDeployedIds()
    {
        Server.Handle("aiplatform.projects.locations.indexEndpoints.get", _ => Reply.Ok(
            "{\"name\":\"" + Endpoint + "\",\"displayName\":\"e\",\"publicEndpointDomainName\":\"1.us-central1-2.vdb.vertexai.goog\",\"deployedIndexes\":[{\"id\":\"ext_ris_index\",\"index\":\"" + Index + "\"}]}"));
        var info = await _vertex.GetIndexEndpointAsync(Endpoint);
        Assert.That(info.Name, Is.EqualTo(Endpoint));
        Assert.That(info.PublicEndpointDomainName, Is.EqualTo("1.us-central1-2.vdb.vertexai.goog"));
        Assert.That(info.DeployedIndexIds, Is.EqualTo(new[] { "ext_ris_index" }));

        Server.Handle("aiplatform.projects.locations.indexEndpoints.get", _ => Reply.Ok("{\"name\":\"" + Endpoint + "\"}"));
        var bare = await _vertex.GetIndexEndpointAsync(Endpoint);
        Assert.That((bare.PublicEndpointDomainName, bare.DeployedIndexIds.Count), Is.EqualTo(((string?)null, 0)));
    }

    [Test]
    public async Task UpsertSplitsIntoBatches()
    {
        Server.Handle("aiplatform.projects.locations.indexes.upsertDatapoints", _ => Reply.Ok("{}"));
        var points = Enumerable.Range(0, 250).Select(i => new IndexDatapoint($"img/{i}.jpg", [i, 0.5f, -1.25f])).ToArray();
        await _vertex.UpsertDatapointsAsync(Index, points);
        var requests = Server.RequestsOf("aiplatform.projects.locations.indexes.upsertDatapoints");
        Assert.That(requests.Select(r => r.Json.GetProperty("datapoints").GetArrayLength()), Is.EqualTo(new[] { 100, 100, 50 }));
        Assert.That(requests[0].RawPath, Is.EqualTo($"/v1/{Index}:upsertDatapoints"));
        Assert.That(requests[2].Json.GetProperty("datapoints")[49].GetRawText(), Is.EqualTo("""{"datapointId":"img/249.jpg","featureVector":[249,0.5,-1.25],"crowdingTag":{"crowdingAttribute":"img/249.jpg"}}"""));
    }

    [Test]
    public async Task RemoveSendsTheIds()
    {
        Server.Handle("aiplatform.projects.locations.indexes.removeDatapoints", _ => Reply.Ok("{}"));
        await _vertex.RemoveDatapointsAsync(Index, ["a.jpg", "b/c.png"]);
        var request = Server.RequestsOf("aiplatform.projects.locations.indexes.removeDatapoints").Single();
        Assert.That(request.RawPath, Is.EqualTo($"/v1/{Index}:removeDatapoints"));
        Assert.That(request.Json.GetRawText(), Is.EqualTo("""{"datapointIds":["a.jpg","b/c.png"]}"""));
    }

    [Test]
    public async Task FindNeighborsQueriesThePublicEndpointAndReadsSparseAnswers()
    {
        Server.Handle("aiplatform.projects.locations.indexEndpoints.findNeighbors", _ => Reply.Ok("""
            {"nearestNeighbors":[
              {"id":"q0","neighbors":[
                {"datapoint":{"datapointId":"a.jpg","crowdingTag":{"crowdingAttribute":"0"}}},
                {"datapoint":{"datapointId":"b.jpg"},"distance":0.25}]},
              {"id":"q1"}]}
            """));
        var results = await _vertex.FindNeighborsAsync("1.us-central1-2.vdb.vertexai.goog", Endpoint, "ext_ris_index",
            [new NeighborQuery("q0", [1f, 0f]), new NeighborQuery("q1", [0f, 1f])], 5);

        var request = Server.RequestsOf("aiplatform.projects.locations.indexEndpoints.findNeighbors").Single();
        Assert.That(request.RawPath, Is.EqualTo($"/v1/{Endpoint}:findNeighbors"));
        Assert.That(request.Json.GetRawText(), Is.EqualTo(
            """{"deployedIndexId":"ext_ris_index","queries":[{"datapoint":{"datapointId":"q0","featureVector":[1,0]},"neighborCount":5},{"datapoint":{"datapointId":"q1","featureVector":[0,1]},"neighborCount":5}]}"""));
        Assert.That(results, Has.Count.EqualTo(2));
        Assert.That(results[0].Id, Is.EqualTo("q0"));
        Assert.That(results[0].Neighbors, Is.EqualTo(new[] { new Neighbor("a.jpg", "0", 0), new Neighbor("b.jpg", null, 0.25) }));
        Assert.That((results[1].Id, results[1].Neighbors.Count), Is.EqualTo(("q1", 0)));
    }

    [Test]
    public async Task AnImageIsWrittenWithEveryFolderItIsUnderAsRestrictTokens()
    {
        Server.Handle("aiplatform.projects.locations.indexes.upsertDatapoints", _ => Reply.Ok("{}"));
        await _vertex.UpsertDatapointsAsync(Index, [IndexDatapoint.ForImage("shop/dresses/red.jpg", [1f]), IndexDatapoint.ForImage("top.jpg", [2f])]);

        var body = Server.RequestsOf("aiplatform.projects.locations.indexes.upsertDatapoints").Single().Json;
        Assert.That(body.GetRawText(), Is.EqualTo(
            """{"datapoints":[{"datapointId":"shop/dresses/red.jpg","featureVector":[1],"restricts":[{"namespace":"folder","allowList":["shop","shop/dresses"]}],"crowdingTag":{"crowdingAttribute":"shop/dresses/red.jpg"}},"""
            + """{"datapointId":"top.jpg","featureVector":[2],"crowdingTag":{"crowdingAttribute":"top.jpg"}}]}"""));
    }

    /// <summary>MATCH_CROPS: a view is written with its image's folders and the image as its crowding attribute.</summary>
    [Test]
    public async Task AViewIsWrittenWithItsImageAsCrowdingAttribute()
    {
        Server.Handle("aiplatform.projects.locations.indexes.upsertDatapoints", _ => Reply.Ok("{}"));
        await _vertex.UpsertDatapointsAsync(Index, ImageViews.Datapoints("shop/red.jpg", EmbeddingResult.Success([1f]) with { Views = [new ImageView(ImageViews.CenterZoom, [2f])] }));

        var body = Server.RequestsOf("aiplatform.projects.locations.indexes.upsertDatapoints").Single().Json;
        Assert.That(body.GetRawText(), Is.EqualTo(
            """{"datapoints":[{"datapointId":"shop/red.jpg","featureVector":[1],"restricts":[{"namespace":"folder","allowList":["shop"]}],"crowdingTag":{"crowdingAttribute":"shop/red.jpg"}},"""
            + """{"datapointId":"shop/red.jpg\nzoom","featureVector":[2],"restricts":[{"namespace":"folder","allowList":["shop"]}],"crowdingTag":{"crowdingAttribute":"shop/red.jpg"}}]}"""));
    }

    /// <summary>
    /// MATCH_CROPS: each query asks for one neighbour per crowding attribute (an image with its views), and a view
    /// answers under its image's id; should an image still come twice, its nearest stays and the count is of images.
    /// </summary>
    [Test]
    public async Task WithMatchCropsAQueryAsksForOneNeighbourPerImageAndAViewAnswersAsItsImage()
    {
        using var services = GcpTestHost.Build(Server, a => a.UpsertBatchSize = 100, extension: WithMatchCrops());
        var vertex = services.GetRequiredService<IVectorIndexService>();
        var zoom = ImageViews.Id("a.jpg", ImageViews.CenterZoom);
        Server.Handle("aiplatform.projects.locations.indexEndpoints.findNeighbors", _ => Reply.Ok($$$"""
            {"nearestNeighbors":[
              {"id":"q0","neighbors":[
                {"datapoint":{"datapointId":{{{JsonSerializer.Serialize(zoom)}}},"crowdingTag":{"crowdingAttribute":"a.jpg"}},"distance":0.9},
                {"datapoint":{"datapointId":"b.jpg","crowdingTag":{"crowdingAttribute":"b.jpg"}},"distance":0.8},
                {"datapoint":{"datapointId":"a.jpg","crowdingTag":{"crowdingAttribute":"a.jpg"}},"distance":0.7},
                {"datapoint":{"datapointId":"c.jpg","crowdingTag":{"crowdingAttribute":"c.jpg"}},"distance":0.6}]}]}
            """));

        var results = await vertex.FindNeighborsAsync("1.us-central1-2.vdb.vertexai.goog", Endpoint, "ext_ris_index", [new NeighborQuery("q0", [1f], "shop")], 2);

        var request = Server.RequestsOf("aiplatform.projects.locations.indexEndpoints.findNeighbors").Single();
        Assert.That(request.Json.GetProperty("queries").GetRawText(), Is.EqualTo(
            """[{"datapoint":{"datapointId":"q0","featureVector":[1],"restricts":[{"namespace":"folder","allowList":["shop"]}]},"neighborCount":2,"perCrowdingAttributeNeighborCount":1}]"""));
        Assert.That(results.Single().Neighbors, Is.EqualTo(new[] { new Neighbor("a.jpg", "a.jpg", 0.9), new Neighbor("b.jpg", "b.jpg", 0.8) }));
    }

    private static ExtensionOptions WithMatchCrops()
    {
        var e = GcpTestHost.Extension;
        return new ExtensionOptions { ProjectId = e.ProjectId, InstanceId = e.InstanceId, Location = e.Location, ImageBucket = e.ImageBucket, MatchCrops = true };
    }

    [Test]
    public async Task AFolderSearchSendsTheFolderAsTheQuerysAllowList()
    {
        Server.Handle("aiplatform.projects.locations.indexEndpoints.findNeighbors", _ => Reply.Ok("""{"nearestNeighbors":[{"id":"q0"},{"id":"q1"}]}"""));
        await _vertex.FindNeighborsAsync("1.us-central1-2.vdb.vertexai.goog", Endpoint, "ext_ris_index",
            [new NeighborQuery("q0", [1f], "shop/dresses"), new NeighborQuery("q1", [0f])], 3);

        var request = Server.RequestsOf("aiplatform.projects.locations.indexEndpoints.findNeighbors").Single();
        Assert.That(request.Json.GetProperty("queries").GetRawText(), Is.EqualTo(
            """[{"datapoint":{"datapointId":"q0","featureVector":[1],"restricts":[{"namespace":"folder","allowList":["shop/dresses"]}]},"neighborCount":3},{"datapoint":{"datapointId":"q1","featureVector":[0]},"neighborCount":3}]"""));
    }

    [Test]
    public async Task ReadDatapointsAsksTheDeployedIndexAndLeavesOutWhatItDoesNotHold()
    {
        Server.Handle("aiplatform.projects.locations.indexEndpoints.readIndexDatapoints", _ => Reply.Ok("""
            {"datapoints":[
              {"datapointId":"a/b.jpg","featureVector":[0.5,-1],"restricts":[{"namespace":"folder","allowList":["a"]},{"namespace":"other","allowList":["x"]}]},
              {"datapointId":"c.jpg","featureVector":[1,0]}]}
            """));
        var read = await _vertex.ReadDatapointsAsync("1.us-central1-2.vdb.vertexai.goog", Endpoint, "ext_ris_index", ["a/b.jpg", "c.jpg", "gone.jpg"]);

        var request = Server.RequestsOf("aiplatform.projects.locations.indexEndpoints.readIndexDatapoints").Single();
        Assert.That(request.RawPath, Is.EqualTo($"/v1/{Endpoint}:readIndexDatapoints"));
        Assert.That(request.Json.GetRawText(), Is.EqualTo("""{"deployedIndexId":"ext_ris_index","ids":["a/b.jpg","c.jpg","gone.jpg"]}"""));
        Assert.That(read.Select(d => (d.DatapointId, string.Join(",", d.FeatureVector), string.Join(",", d.Folders))),
            Is.EqualTo(new[] { ("a/b.jpg", "0.5,-1", "a"), ("c.jpg", "1,0", "") }));
    }

    // Should Vertex AI answer a read with an unknown id NOT_FOUND as a whole, the known ids are still read, one by one.
    [Test]
    public async Task ANotFoundReadIsRetriedIdByIdAndTheUnknownIdsLeftOut()
    {
        const string Method = "aiplatform.projects.locations.indexEndpoints.readIndexDatapoints";
        Server.Handle(Method, r =>
        {
            var ids = r.Json.GetProperty("ids").EnumerateArray().Select(i => i.GetString()).ToArray();
            return ids is ["a.jpg"]
                ? Reply.Ok("""{"datapoints":[{"datapointId":"a.jpg","featureVector":[1,2]}]}""")
                : Reply.Error(404, "NOT_FOUND", "Datapoint not found");
        });

        var read = await _vertex.ReadDatapointsAsync("1.us-central1-2.vdb.vertexai.goog", Endpoint, "ext_ris_index", ["a.jpg", "gone.jpg"]);

        Assert.That(read.Select(d => d.DatapointId), Is.EqualTo(new[] { "a.jpg" }));
        Assert.That(Server.RequestsOf(Method).Select(r => r.Json.GetProperty("ids").GetRawText()),
            Is.EqualTo(new[] { """["a.jpg","gone.jpg"]""", """["a.jpg"]""", """["gone.jpg"]""" }));
    }

    [Test]
    public void ReadDatapointsSendsNoTokenToAHostThatIsNotVectorSearch()
    {
        var e = Assert.ThrowsAsync<ServiceException>(() => _vertex.ReadDatapointsAsync("attacker.example", Endpoint, "ext_ris_index", ["a.jpg"]));
        Assert.That(e!.Status, Is.EqualTo("FAILED_PRECONDITION"));
        Assert.That(Server.Requests, Is.Empty);
    }

    [Test]
    public void ANotFoundIndexIsAServiceException()
    {
        Server.FailNext("aiplatform.projects.locations.indexes.upsertDatapoints", Reply.Error(404, "NOT_FOUND", "Index not found"));
        var e = Assert.ThrowsAsync<ServiceException>(() => _vertex.UpsertDatapointsAsync(Index, [new IndexDatapoint("a", [1f])]));
        Assert.That(e!.IsNotFound, Is.True);
    }
}
