using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Triggers;

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
    public async Task NeighboursDefaultsToTenAndAcceptsANumericString()
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
            _stack.Services.GetService<ReverseImageSearch.Functions.QueryIndex>()!.HandleAsync(request, CancellationToken.None));
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
