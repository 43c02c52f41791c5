using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>
/// queryIndex's "paths" (search from stored images) and "folder" (only images under a folder) on the local stack, with
/// both engines' lifecycles: Vertex AI's (an index built from datapoint files, then streamed) and Firestore's.
/// </summary>
[TestFixture("vertex")]
[TestFixture("firestore")]
[Parallelizable(ParallelScope.None)]
public sealed class MoreLikeThisAndFolderTests(string backend)
{
    private static readonly IReadOnlyList<string> Samples = LocalStackHarness.SampleNames;
    private LocalStackHarness _stack = null!;
    private string[] _stored = null!;

    [OneTimeSetUp]
    public async Task StartDeployedStackAsync()
    {
        _stack = LocalStackHarness.Create(imageCount: 0, new Dictionary<string, string?> { ["INDEX_BACKEND"] = backend });
        // 24 images: 8 at the top, 8 in shop/dresses (4 of them in shop/dresses/red), 8 in shop/shoes;
        // and a look-alike folder name that is not under shop/dresses.
        _stored = Samples.Take(24).Select((name, i) => i switch
        {
            < 8 => name,
            < 12 => $"shop/dresses/{name}",
            < 16 => $"shop/dresses/red/{name}",
            < 23 => $"shop/shoes/{name}",
            _ => $"shop/dressesx/{name}",
        }).ToArray();
        for (var i = 0; i < _stored.Length; i++)
        {
            _stack.AddImage(_stored[i], LocalStackHarness.SampleBytes(Samples[i]));
        }

        await _stack.StartAsync();
        await _stack.WaitUntilDeployedAsync(TimeSpan.FromSeconds(120));
        await LocalStackHarness.WaitUntilAsync(
            async () => (await _stack.QueryAsync(30, LocalStackHarness.SampleBytes(Samples[0])))[0].Count == _stored.Length, TimeSpan.FromSeconds(60), "every image indexed");
    }

    [OneTimeTearDown]
    public async Task StopAsync() => await _stack.DisposeAsync();

    [Test]
    public async Task APathIsAnsweredFromItsStoredVectorWithoutItselfAndAsTheSameImageUploadedWouldBe()
    {
        var path = _stored[9];
        var byPath = Entries(await _stack.CallQueryAsync(new JsonObject { ["paths"] = new JsonArray(path), ["neighbours"] = 5 }));
        var byImage = await _stack.QueryAsync(6, LocalStackHarness.SampleBytes(Samples[9]));

        Assert.That(byPath.Select(e => e.Id), Is.EqualTo(new[] { path }), "one entry, named by its path");
        Assert.That(byPath[0].Neighbors.Select(n => n.Id), Is.EqualTo(byImage[0].Where(n => n.Id != path).Take(5).Select(n => n.Id)),
            "the same neighbours as the image itself finds, less the image");
        Assert.That(byPath[0].Neighbors.Zip(byImage[0].Skip(1)).Select(p => Math.Abs(p.First.Distance - p.Second.Distance)), Has.All.LessThan(1e-4));
    }

    [Test]
    public async Task QueryAndPathsTogetherAnswerImagesFirstThenPathsInOrder()
    {
        var result = Entries(await _stack.CallQueryAsync(new JsonObject
        {
            ["query"] = new JsonArray(Convert.ToBase64String(LocalStackHarness.SampleBytes(Samples[2]))),
            ["paths"] = new JsonArray(_stored[20], _stored[3], _stored[20]),
            ["neighbours"] = 3,
        }));

        Assert.That(result.Select(e => e.Id), Is.EqualTo(new[] { "0", _stored[20], _stored[3], _stored[20] }));
        Assert.That(result[0].Neighbors[0].Id, Is.EqualTo(_stored[2]), "an uploaded image still finds itself");
        Assert.That(result.Skip(1).Select(e => e.Neighbors.Count), Has.All.EqualTo(3));
        Assert.That(result.Skip(1).Select(e => e.Neighbors.Any(n => n.Id == e.Id)), Has.All.False);
    }

    [Test]
    public async Task AFolderRestrictsEveryAnswerToImagesUnderItAtAnyDepthAndStillFillsIt()
    {
        var result = Entries(await _stack.CallQueryAsync(new JsonObject
        {
            ["query"] = new JsonArray(Convert.ToBase64String(LocalStackHarness.SampleBytes(Samples[0]))),
            ["paths"] = new JsonArray(_stored[20]),
            ["folder"] = "/shop/dresses/",
            ["neighbours"] = 8,
        }));

        var underDresses = _stored.Where(s => s.StartsWith("shop/dresses/", StringComparison.Ordinal)).ToArray();
        Assert.That(underDresses, Has.Length.EqualTo(8));
        Assert.That(result[0].Neighbors.Select(n => n.Id), Is.EquivalentTo(underDresses), "all 8, nested ones too, and not shop/dressesx");
        Assert.That(result[1].Neighbors.Select(n => n.Id), Is.EquivalentTo(underDresses), "a path outside the folder searches inside it");

        var red = Entries(await _stack.CallQueryAsync(new JsonObject { ["paths"] = new JsonArray(_stored[12]), ["folder"] = "shop/dresses/red", ["neighbours"] = 10 }));
        Assert.That(red[0].Neighbors.Select(n => n.Id), Is.EquivalentTo(_stored.Skip(13).Take(3)), "the rest of the folder, less the image itself");
    }

    [Test]
    public async Task AnEmptyFolderOrOneWithoutImagesAnswers()
    {
        var whole = Entries(await _stack.CallQueryAsync(new JsonObject { ["paths"] = new JsonArray(_stored[0]), ["folder"] = "", ["neighbours"] = 30 }));
        var none = Entries(await _stack.CallQueryAsync(new JsonObject { ["paths"] = new JsonArray(_stored[0]), ["folder"] = "no/such/folder" }));

        Assert.That(whole[0].Neighbors, Has.Count.EqualTo(_stored.Length - 1), "an empty folder is the whole bucket");
        Assert.That(none[0].Neighbors, Is.Empty);
    }

    [Test]
    public void UnknownOrNotIndexedPathsAreNotFoundNamingThem()
    {
        var error = Assert.ThrowsAsync<FunctionException>(() => _stack.CallQueryAsync(new JsonObject
        {
            ["paths"] = new JsonArray(_stored[1], "nope/\"odd\" name.jpg", "shop/dresses", "nope/\"odd\" name.jpg"),
        }));

        Assert.That(error!.Code, Is.EqualTo(FunctionErrorCode.NotFound));
        Assert.That(error.Message, Does.Contain("\"nope/\\u0022odd\\u0022 name.jpg\"").And.Contain("\"shop/dresses\"").And.Not.Contain(_stored[1]));
        var details = JsonSerializer.SerializeToElement(error.Details);
        Assert.That(details.GetProperty("paths").EnumerateArray().Select(p => p.GetString()), Is.EqualTo(new[] { "nope/\"odd\" name.jpg", "shop/dresses" }));
    }

    // Vertex AI builds its index from the backfill's datapoint files: each line carries the image's folders as restrict
    // tokens, the same ones upserts write, so folder searches see backfilled images on Vertex AI too. Firestore's
    // backfill writes the vector documents (with their folders) directly, and no file.
    [Test]
    public async Task TheBackfillsDatapointFilesCarryEveryFolderAsRestrictTokens()
    {
        var objects = _stack.Services.GetRequiredService<IObjectStore>();
        var lines = new List<JsonElement>();
        await foreach (var file in objects.ListAsync(_stack.Options.EmbeddingsBucket, "datapoints/"))
        {
            lines.AddRange(Encoding.UTF8.GetString(await objects.ReadAsync(file.Bucket, file.Name)).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => JsonDocument.Parse(line).RootElement.Clone()));
        }

        if (backend == "firestore")
        {
            Assert.That(lines, Is.Empty);
            return;
        }

        var restricts = lines.ToDictionary(
            l => l.GetProperty("id").GetString()!,
            l => l.TryGetProperty("restricts", out var r) ? r.GetRawText() : null);
        Assert.That(restricts.Keys, Is.EquivalentTo(_stored));
        Assert.That(restricts[_stored[0]], Is.Null, "an image at the top of the bucket has no folder");
        Assert.That(restricts[_stored[13]], Is.EqualTo("""[{"namespace":"folder","allow":["shop","shop/dresses","shop/dresses/red"]}]"""));
    }

    public static IEnumerable<TestCaseData> MalformedRequests()
    {
        yield return new TestCaseData(new JsonObject { ["paths"] = "a.jpg" }).SetName("paths is a string");
        yield return new TestCaseData(new JsonObject { ["paths"] = new JsonArray() }).SetName("paths is empty and no query");
        yield return new TestCaseData(new JsonObject { ["paths"] = new JsonArray(42) }).SetName("a path is a number");
        yield return new TestCaseData(new JsonObject { ["paths"] = new JsonArray("") }).SetName("a path is empty");
        yield return new TestCaseData(new JsonObject { ["paths"] = new JsonArray((JsonNode?)null) }).SetName("a path is null");
        yield return new TestCaseData(new JsonObject { ["paths"] = new JsonArray(new string('a', 1025)) }).SetName("a path longer than an object name");
        yield return new TestCaseData(new JsonObject { ["paths"] = new JsonArray(Enumerable.Range(0, 17).Select(i => (JsonNode)$"{i}.jpg").ToArray()) }).SetName("17 paths");
        yield return new TestCaseData(new JsonObject
        {
            ["query"] = new JsonArray(Enumerable.Range(0, 9).Select(_ => (JsonNode)"aGVsbG8=").ToArray()),
            ["paths"] = new JsonArray(Enumerable.Range(0, 8).Select(i => (JsonNode)$"{i}.jpg").ToArray()),
        }).SetName("17 searches, query and paths together");
        yield return new TestCaseData(new JsonObject { ["paths"] = new JsonArray("a.jpg"), ["folder"] = 3 }).SetName("folder is a number");
        yield return new TestCaseData(new JsonObject { ["paths"] = new JsonArray("a.jpg"), ["folder"] = new JsonArray("a") }).SetName("folder is an array");
        yield return new TestCaseData(new JsonObject { ["paths"] = new JsonArray("a.jpg"), ["folder"] = new string('é', 513) }).SetName("folder longer than an object name");
    }

    [TestCaseSource(nameof(MalformedRequests))]
    public void MalformedPathsAndFoldersAreInvalidArguments(JsonObject data)
    {
        var error = Assert.ThrowsAsync<FunctionException>(() => _stack.CallQueryAsync(data));
        Assert.That(error!.Code, Is.EqualTo(FunctionErrorCode.InvalidArgument), error.Message);
        Assert.That(error.Message, Does.Contain("paths").Or.Contain("folder").Or.Contain("searches"));
    }

    private static (string Id, IReadOnlyList<(string Id, double Distance)> Neighbors)[] Entries(JsonElement result) =>
        result.GetProperty("data").GetProperty("nearestNeighbors").EnumerateArray()
            .Select(e => (e.GetProperty("id").GetString()!, (IReadOnlyList<(string, double)>)e.GetProperty("neighbors").EnumerateArray()
                .Select(n => (n.GetProperty("datapoint").GetProperty("datapointId").GetString()!, n.GetProperty("distance").GetDouble())).ToArray()))
            .ToArray();
}
