using System.Text;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp.Contract;

/// <summary>Proves the validator rejects what the schemas do not allow, so adapter tests that pass mean something.</summary>
public sealed class ContractServerSelfTests : ContractTestBase
{
    private HttpClient _http = null!;

    [SetUp]
    public void CreateClient()
    {
        _http = new HttpClient { BaseAddress = Server.BaseUri };
        _http.DefaultRequestHeaders.Authorization = new("Bearer", Server.ExpectedToken);
        Server.Handle("cloudtasks.projects.locations.queues.tasks.create", _ => Reply.Ok("{}"));
        Server.Handle("firestore.projects.databases.documents.get", _ => Reply.Ok("{}"));
        Server.Handle("aiplatform.projects.locations.indexes.upsertDatapoints", _ => Reply.Ok("{}"));
    }

    [TearDown]
    public void DisposeClient() => _http.Dispose();

    private async Task<string[]> ViolationsOfAsync(HttpMethod method, string url, string? json)
    {
        using var request = new HttpRequestMessage(method, url);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var _ = await _http.SendAsync(request);
        var found = Server.Violations.ToArray();
        Server.Violations.Clear();
        return found;
    }

    private const string TasksUrl = "/v2/projects/p/locations/l/queues/q/tasks";

    [Test]
    public async Task AValidRequestPasses()
    {
        var found = await ViolationsOfAsync(HttpMethod.Post, TasksUrl,
            """{"task":{"name":"projects/p/locations/l/queues/q/tasks/a","scheduleTime":"2026-01-01T00:00:00Z","dispatchDeadline":"60s","httpRequest":{"httpMethod":"POST","url":"https://x","headers":{"Content-Type":"application/json"},"body":"e30=","oidcToken":{"serviceAccountEmail":"a@b"}}}}""");
        Assert.That(found, Is.Empty);
    }

    [TestCase("""{"task":{"unknownField":1}}""", "unknown property")]
    [TestCase("""{"task":{"httpRequest":{"httpMethod":"FETCH"}}}""", "not one of")]
    [TestCase("""{"task":{"httpRequest":{"url":5}}}""", "expected a string")]
    [TestCase("""{"task":{"httpRequest":{"headers":{"a":1}}}}""", "expected a string")]
    [TestCase("""{"task":{"httpRequest":{"body":"not base64!"}}}""", "not base64")]
    [TestCase("""{"task":{"dispatchDeadline":"ten minutes"}}""", "not a duration")]
    [TestCase("""{"task":{"scheduleTime":"tomorrow"}}""", "RFC 3339")]
    [TestCase("""{"task":[]}""", "expected an object")]
    public async Task ABadBodyIsRejected(string json, string expected)
    {
        var found = await ViolationsOfAsync(HttpMethod.Post, TasksUrl, json);
        Assert.That(found, Has.Some.Contains(expected));
    }

    [Test]
    public async Task NumbersAreCheckedInNestedArrays()
    {
        const string url = "/v1/projects/p/locations/l/indexes/1:upsertDatapoints";
        Assert.That(await ViolationsOfAsync(HttpMethod.Post, url, """{"datapoints":[{"datapointId":"a","featureVector":[0.5,1]}]}"""), Is.Empty);
        Assert.That(await ViolationsOfAsync(HttpMethod.Post, url, """{"datapoints":[{"datapointId":"a","featureVector":["x"]}]}"""), Has.Some.Contains("expected a number"));
        Assert.That(await ViolationsOfAsync(HttpMethod.Post, url, """{"datapoints":[{"datapoint_id":"a"}]}"""), Has.Some.Contains("unknown property"));
    }

    [Test]
    public async Task AnOutputOnlyFieldIsRejected()
    {
        Server.Handle("aiplatform.projects.locations.indexes.create", _ => Reply.Ok("""{"name":"op"}"""));
        const string url = "/v1/projects/p/locations/l/indexes";
        Assert.That(await ViolationsOfAsync(HttpMethod.Post, url, """{"displayName":"x","metadata":{"any":[1]}}"""), Is.Empty);
        Assert.That(await ViolationsOfAsync(HttpMethod.Post, url, """{"displayName":"x","name":"projects/p"}"""), Has.Some.Contains("output-only"));
        Assert.That(await ViolationsOfAsync(HttpMethod.Post, url, """{"displayName":"x","indexUpdateMethod":"STREAMING"}"""), Has.Some.Contains("not one of"));
    }

    [Test]
    public async Task AnUndeclaredQueryParameterIsRejected()
    {
        const string doc = "/v1/projects/p/databases/(default)/documents/c/d";
        Assert.That(await ViolationsOfAsync(HttpMethod.Get, doc + "?transaction=dHg%3D", null), Is.Empty);
        Assert.That(await ViolationsOfAsync(HttpMethod.Get, doc + "?mask=a", null), Has.Some.Contains("not declared"));
        Assert.That(await ViolationsOfAsync(HttpMethod.Get, doc + "?transaction=a&transaction=b", null), Has.Some.Contains("not repeated"));
        Assert.That(await ViolationsOfAsync(HttpMethod.Get, doc + "?uploadType=media", null), Has.Some.Contains("uploadType"));
    }

    [Test]
    public async Task AnUnknownPathOrVerbOrMissingTokenIsRejected()
    {
        Assert.That(await ViolationsOfAsync(HttpMethod.Get, "/v2/projects/p/nothing", null), Has.Some.Contains("no discovery method"));
        Assert.That(await ViolationsOfAsync(HttpMethod.Put, TasksUrl, "{}"), Has.Some.Contains("no discovery method"));
        _http.DefaultRequestHeaders.Authorization = null;
        Assert.That(await ViolationsOfAsync(HttpMethod.Get, "/v1/projects/p/databases/(default)/documents/c/d", null), Has.Some.Contains("Authorization"));
    }
}

/// <summary>Path templates: {+name} follows the parameter's declared pattern, {name} is one segment.</summary>
public sealed class DiscoveryDocumentTests
{
    [TestCase("GET", "/v1/projects/p/databases/(default)/documents/a/b/c/d", "firestore.projects.databases.documents.get")]
    [TestCase("PATCH", "/v1/projects/p/databases/(default)/documents/a/b", "firestore.projects.databases.documents.patch")]
    [TestCase("POST", "/v1/projects/p/databases/(default)/documents:commit", "firestore.projects.databases.documents.commit")]
    [TestCase("GET", "/storage/v1/b/bkt/o/a%2Fb.jpg", "storage.objects.get")]
    [TestCase("GET", "/v1/projects/p/locations/l/indexes/1/operations/2", "aiplatform.projects.locations.indexes.operations.get")]
    public void APathFindsItsMethod(string verb, string path, string id)
    {
        var docs = new[] { "firestore.v1", "storage.v1", "aiplatform.v1" }
            .Select(n => new DiscoveryDocument(Path.Combine(TestPaths.ApiSpecs, "discovery", n + ".json")));
        var found = docs.SelectMany(d => d.Methods).Where(m => m.HttpMethod == verb && m.PathPatterns.Any(p => p.IsMatch(path))).Select(m => m.Id);
        Assert.That(found, Does.Contain(id));
    }

    [TestCase("GET", "/storage/v1/b/bkt/o/a/b.jpg")]
    [TestCase("GET", "/v1/projects/p/databases/(default)/documents")]
    [TestCase("POST", "/v1/projects/p/locations/l/indexes/1:upsert")]
    public void APathOutsideTheTemplatesFindsNothingOfThatKind(string verb, string path)
    {
        var docs = new[] { "firestore.v1", "storage.v1", "aiplatform.v1" }
            .Select(n => new DiscoveryDocument(Path.Combine(TestPaths.ApiSpecs, "discovery", n + ".json")));
        var found = docs.SelectMany(d => d.Methods)
            .Where(m => m.HttpMethod == verb && m.PathPatterns.Any(p => p.IsMatch(path)))
            .Select(m => m.Id)
            .Where(id => id is "storage.objects.get" or "firestore.projects.databases.documents.get" or "aiplatform.projects.locations.indexes.upsertDatapoints");
        Assert.That(found, Is.Empty);
    }
}
