using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Functions;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>queryIndex on the local stack: the original's contract, every query image searched, bad input refused.</summary>
[Parallelizable(ParallelScope.None)]
public class QueryIndexTests
{
    private LocalStackHarness _stack = null!;

    [OneTimeSetUp]
    public async Task StartDeployedStackAsync()
    {
        _stack = await LocalStackHarness.Create(imageCount: 10).StartAsync();
        await _stack.WaitUntilDeployedAsync();
    }

    [OneTimeTearDown]
    public async Task StopAsync() => await _stack.DisposeAsync();

    [Test]
    public async Task EveryQueryImageGetsItsOwnEntryInTheOriginalsShape()
    {
        var names = LocalStackHarness.SampleNames;
        var result = await _stack.CallQueryAsync(new JsonObject
        {
            ["query"] = new JsonArray(Base64(names[4]), Base64(names[7]), Base64(names[1])),
            ["neighbours"] = 2,
        });

        Assert.That(result.GetProperty("status").GetString(), Is.EqualTo("ok"));
        Assert.That(result.GetProperty("message").GetString(), Is.EqualTo("Query successful"));
        var entries = result.GetProperty("data").GetProperty("nearestNeighbors").EnumerateArray().ToArray();
        Assert.That(entries.Select(e => e.GetProperty("id").GetString()), Is.EqualTo(new[] { "0", "1", "2" }));
        Assert.That(entries.Select(e => e.GetProperty("neighbors")[0].GetProperty("datapoint").GetProperty("datapointId").GetString()),
            Is.EqualTo(new[] { names[4], names[7], names[1] }));
        foreach (var entry in entries)
        {
            var neighbors = entry.GetProperty("neighbors").EnumerateArray().ToArray();
            Assert.That(neighbors, Has.Length.EqualTo(2));
            Assert.That(neighbors[0].GetProperty("datapoint").TryGetProperty("crowdingTag", out _), Is.True);
            Assert.That(neighbors[0].GetProperty("distance").ValueKind, Is.EqualTo(JsonValueKind.Number));
        }
    }

    [Test]
    public async Task NeighborsDefaultsToTenAndAcceptsANumericString()
    {
        var byDefault = await _stack.CallQueryAsync(new JsonObject { ["query"] = new JsonArray(Base64(LocalStackHarness.SampleNames[0])) });
        Assert.That(Neighbors(byDefault), Has.Length.EqualTo(10));
        var asText = await _stack.CallQueryAsync(new JsonObject { ["query"] = new JsonArray(Base64(LocalStackHarness.SampleNames[0])), ["neighbours"] = "3" });
        Assert.That(Neighbors(asText), Has.Length.EqualTo(3));
    }

    [Test]
    public async Task ADataUrlIsAcceptedAsWellAsPlainBase64()
    {
        var name = LocalStackHarness.SampleNames[5];
        var result = await _stack.CallQueryAsync(new JsonObject { ["query"] = new JsonArray("data:image/jpeg;base64," + Base64(name)), ["neighbours"] = 1 });
        Assert.That(Neighbors(result)[0].GetProperty("datapoint").GetProperty("datapointId").GetString(), Is.EqualTo(name));
    }

    [Test]
    public void ACallerWithoutAuthIsRefused()
    {
        var request = new CallableRequest(JsonSerializer.SerializeToElement(new { query = new[] { Base64(LocalStackHarness.SampleNames[0]) } }), null);
        var error = Assert.ThrowsAsync<FunctionException>(() =>
            _stack.Services.GetService<QueryIndex>()!.HandleAsync(request, CancellationToken.None));
        Assert.That(error!.Code, Is.EqualTo(FunctionErrorCode.Unauthenticated));
    }

    public static IEnumerable<TestCaseData> MalformedQueries()
    {
        yield return new TestCaseData(new JsonObject()).SetName("query missing");
        yield return new TestCaseData(new JsonObject { ["query"] = "aGVsbG8=" }).SetName("query is a string");
        yield return new TestCaseData(new JsonObject { ["query"] = new JsonArray() }).SetName("query is empty");
        yield return new TestCaseData(new JsonObject { ["query"] = new JsonArray("not base64 at all!") }).SetName("query is not base64");
        yield return new TestCaseData(new JsonObject { ["query"] = new JsonArray(42) }).SetName("query item is a number");
        yield return new TestCaseData(new JsonObject { ["query"] = new JsonArray(Enumerable.Range(0, 17).Select(_ => (JsonNode)"aGVsbG8=").ToArray()) }).SetName("too many images");
        yield return new TestCaseData(new JsonObject { ["query"] = new JsonArray("aGVsbG8="), ["neighbours"] = 5000 }).SetName("too many neighbours");
    }

    [TestCaseSource(nameof(MalformedQueries))]
    public void MalformedQueriesAreInvalidArguments(JsonObject data)
    {
        var error = Assert.ThrowsAsync<FunctionException>(() => _stack.CallQueryAsync(data));
        Assert.That(error!.Code, Is.EqualTo(FunctionErrorCode.InvalidArgument));
        Assert.That(error.Message, Is.Not.Empty);
    }

    [TestCase("", TestName = "AZeroByteQueryImageIsNamedEmpty")]
    [TestCase("data:image/png;base64,", TestName = "AnEmptyDataUrlIsNamedEmpty")]
    public void AnEmptyQueryImageSaysItIsEmpty(string image)
    {
        var error = Assert.ThrowsAsync<FunctionException>(() => _stack.CallQueryAsync(new JsonObject { ["query"] = new JsonArray(image) }));
        Assert.That(error!.Code, Is.EqualTo(FunctionErrorCode.InvalidArgument));
        Assert.That(error.Message, Is.EqualTo("query[0] is empty: an image of zero bytes."));
    }

    [Test]
    public async Task UnusableImagesAreInvalidArgumentsNamingTheImageAndTheServiceKeepsAnswering()
    {
        var valid = LocalStackHarness.SampleBytes(LocalStackHarness.SampleNames[0]);
        foreach (var (name, bytes) in BadImages.All(valid))
        {
            var data = new JsonObject { ["query"] = new JsonArray(Convert.ToBase64String(valid), Convert.ToBase64String(bytes)) };
            var error = Assert.ThrowsAsync<FunctionException>(() => _stack.CallQueryAsync(data), name);
            Assert.That(error!.Code, Is.EqualTo(FunctionErrorCode.InvalidArgument), name);
            Assert.That(error.Message, Does.StartWith("query[1]"), name);
        }

        Assert.That(await _stack.NearestAsync(valid), Is.EqualTo(LocalStackHarness.SampleNames[0]));
    }

    [Test]
    public async Task TheTypedCallAnswersWhatTheCallableAnswers()
    {
        var names = LocalStackHarness.SampleNames;
        var queryIndex = _stack.Services.GetRequiredService<QueryIndex>();

        var typed = await queryIndex.QueryAsync(
            new QueryIndexRequest([LocalStackHarness.SampleBytes(names[3])], [names[6]], Neighbors: 4), CancellationToken.None);
        var called = await _stack.CallQueryAsync(new JsonObject
        {
            ["query"] = new JsonArray(Base64(names[3])),
            ["paths"] = new JsonArray(names[6]),
            ["neighbours"] = 4,
        });

        Assert.That(typed.Data.NearestNeighbors.Select(e => e.Id), Is.EqualTo(new[] { "0", names[6] }));
        Assert.That(typed.Data.NearestNeighbors[0].Neighbors[0].Datapoint.DatapointId, Is.EqualTo(names[3]));
        Assert.That(typed.Data.NearestNeighbors[1].Neighbors.Select(n => n.Datapoint.DatapointId), Has.None.EqualTo(names[6]).And.Count.EqualTo(4));
        Assert.That(JsonSerializer.Serialize(typed, ReverseImageSearch.Core.CoreJson.Options), Is.EqualTo(called.GetRawText()));
    }

    public static IEnumerable<TestCaseData> RefusedTypedRequests()
    {
        var image = LocalStackHarness.SampleBytes(LocalStackHarness.SampleNames[0]);
        yield return new TestCaseData(new QueryIndexRequest([], []), "The function must be called with").SetName("typed: nothing asked");
        yield return new TestCaseData(new QueryIndexRequest([ReadOnlyMemory<byte>.Empty], []), "query[0] is empty").SetName("typed: empty image");
        yield return new TestCaseData(new QueryIndexRequest([], [""]), "paths[0] must be a non-empty string").SetName("typed: empty path");
        yield return new TestCaseData(new QueryIndexRequest([image], [], Neighbors: 1001), "`neighbours` may be at most 1000").SetName("typed: too many neighbours");
        yield return new TestCaseData(new QueryIndexRequest([image], [], Neighbors: 0), "`neighbours` must be at least 1").SetName("typed: no neighbours");
        yield return new TestCaseData(new QueryIndexRequest([image], [], Folder: new string('f', 1025)), "The `folder` argument is longer").SetName("typed: folder too long");
    }

    [TestCaseSource(nameof(RefusedTypedRequests))]
    public void TheTypedCallRefusesWhatTheCallableRefuses(QueryIndexRequest request, string message)
    {
        var error = Assert.ThrowsAsync<FunctionException>(() => _stack.Services.GetRequiredService<QueryIndex>().QueryAsync(request, CancellationToken.None));
        Assert.That(error!.Code, Is.EqualTo(FunctionErrorCode.InvalidArgument));
        Assert.That(error.Message, Does.StartWith(message));
    }

    private static JsonElement[] Neighbors(JsonElement result) =>
        result.GetProperty("data").GetProperty("nearestNeighbors")[0].GetProperty("neighbors").EnumerateArray().ToArray();

    private static string Base64(string sampleName) => Convert.ToBase64String(LocalStackHarness.SampleBytes(sampleName));
}

public class QueryBeforeDeploymentTests
{
    [Test]
    public async Task AQueryBeforeTheIndexIsDeployedIsAFailedPrecondition()
    {
        await using var stack = await LocalStackHarness.Create(imageCount: 2).StartAsync(run: false);
        var error = Assert.ThrowsAsync<FunctionException>(() =>
            stack.CallQueryAsync(new JsonObject { ["query"] = new JsonArray(Convert.ToBase64String(LocalStackHarness.SampleBytes(LocalStackHarness.SampleNames[0]))) }));
        Assert.That(error!.Code, Is.EqualTo(FunctionErrorCode.FailedPrecondition));
        Assert.That(error.Message, Does.Contain("not ready"));
    }
}
