using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Gcp.Http;
using ReverseImageSearch.Tests.Gcp.Contract;
using ReverseImageSearch.Tests.Gcp.Storage;

namespace ReverseImageSearch.Tests.Gcp.Http;

/// <summary>The shared pipeline: which answers are retried, Retry-After, the bearer token, and error mapping.</summary>
public sealed class GcpHttpPipelineTests : ContractTestBase
{
    private const string Get = "storage.objects.get";
    private ServiceProvider _services = null!;
    private IObjectStore _store = null!;

    [SetUp]
    public void CreateStore()
    {
        var storage = new FakeCloudStorage(Server);
        storage.Put("images", "a.jpg", [1, 2]);
        _services = GcpTestHost.Build(Server, a => a.MaxRetries = 3);
        _store = _services.GetRequiredService<IObjectStore>();
    }

    [TearDown]
    public void DisposeServices() => _services.Dispose();

    [TestCase(408)]
    [TestCase(429)]
    [TestCase(500)]
    [TestCase(502)]
    [TestCase(503)]
    [TestCase(504)]
    public async Task TransientAnswersAreRetried(int status)
    {
        Server.FailNext(Get, Reply.Error(status, GoogleApiErrors.StatusForHttp(status), "try again"));
        Server.FailNext(Get, Reply.Error(status, GoogleApiErrors.StatusForHttp(status), "try again"));
        var meta = await _store.GetMetadataAsync("images", "a.jpg");
        Assert.That(meta?.Size, Is.EqualTo(2));
        Assert.That(Server.RequestsOf(Get), Has.Count.EqualTo(3));
    }

    [Test]
    public async Task RetryAfterIsHonoured()
    {
        Server.FailNext(Get, new Reply(429, """{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}""",
            new Dictionary<string, string> { ["Retry-After"] = "1" }));
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.That(await _store.GetMetadataAsync("images", "a.jpg"), Is.Not.Null);
        Assert.That(Server.RequestsOf(Get), Has.Count.EqualTo(2));
        // The base delay here is 1 ms: a second between the attempts is the server's Retry-After.
        Assert.That(watch.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(900)));
    }

    [Test]
    public async Task AResetConnectionIsRetried()
    {
        Server.FailNext(Get, Reply.Reset());
        Server.FailNext(Get, Reply.Reset());
        var meta = await _store.GetMetadataAsync("images", "a.jpg");
        Assert.That(meta?.Size, Is.EqualTo(2));
        Assert.That(Server.RequestsOf(Get), Has.Count.EqualTo(3));
    }

    [Test]
    public async Task AnAttemptThatTimesOutIsRetried()
    {
        await using var quick = GcpTestHost.Build(Server, a => (a.MaxRetries, a.AttemptTimeout) = (3, TimeSpan.FromMilliseconds(300)));
        Server.FailNext(Get, Reply.After(TimeSpan.FromSeconds(5), Reply.Error(503, "UNAVAILABLE", "too late")));
        var meta = await quick.GetRequiredService<IObjectStore>().GetMetadataAsync("images", "a.jpg");
        Assert.That(meta?.Size, Is.EqualTo(2));
        Assert.That(Server.RequestsOf(Get), Has.Count.EqualTo(2));
    }

    [Test]
    public void RetriesBackOffWithJitter()
    {
        // Exponential from RetryBaseDelay with jitter: with a 100 ms base, four retries wait about 0.1+0.2+0.4+0.8 s
        // in all (the jitter spreads each wait; without backoff they would follow each other at once).
        using var slow = GcpTestHost.Build(Server, a => (a.MaxRetries, a.RetryBaseDelay) = (4, TimeSpan.FromMilliseconds(100)));
        var times = new System.Collections.Concurrent.ConcurrentQueue<DateTimeOffset>();
        Server.Handle(Get, _ =>
        {
            times.Enqueue(DateTimeOffset.UtcNow);
            return Reply.Error(503, "UNAVAILABLE", "down");
        });
        Assert.ThrowsAsync<ServiceException>(() => slow.GetRequiredService<IObjectStore>().GetMetadataAsync("images", "a.jpg"));
        var at = times.ToArray();
        Assert.That(at, Has.Length.EqualTo(5));
        var gaps = at.Zip(at.Skip(1), (a, b) => (b - a).TotalMilliseconds).ToArray();
        Assert.That(gaps.Sum(), Is.GreaterThan(300), string.Join(", ", gaps));
    }

    [TestCase(503)]
    [TestCase(500)]
    [TestCase(0)]
    public void ARequestMarkedSendOnceIsNeverResent(int status)
    {
        Server.FailNext(Get, status == 0 ? Reply.Reset() : Reply.Error(status, GoogleApiErrors.StatusForHttp(status), "maybe applied"));
        var client = new GoogleRestClient(_services.GetRequiredService<IHttpClientFactory>().CreateClient(GcpHttpPipeline.GoogleClient));
        var url = Server.Url("/storage/v1/b/images/o/a.jpg");

        Assert.That(
            () => client.SendJsonOnceAsync<System.Text.Json.JsonElement>(HttpMethod.Get, url, null, CancellationToken.None),
            Throws.InstanceOf<Exception>());
        Assert.That(Server.RequestsOf(Get), Has.Count.EqualTo(1));
    }

    [Test]
    public void RetriesStopAfterTheConfiguredCountWithTheLastError()
    {
        for (var i = 0; i < 4; i++)
        {
            Server.FailNext(Get, Reply.Error(503, "UNAVAILABLE", "down"));
        }

        var e = Assert.ThrowsAsync<ServiceException>(() => _store.GetMetadataAsync("images", "a.jpg"));
        Assert.That((e!.HttpStatus, e.Status, e.ServiceMessage), Is.EqualTo((503, "UNAVAILABLE", "down")));
        Assert.That(Server.RequestsOf(Get), Has.Count.EqualTo(4));
    }

    [TestCase(400, "INVALID_ARGUMENT")]
    [TestCase(401, "UNAUTHENTICATED")]
    [TestCase(403, "PERMISSION_DENIED")]
    [TestCase(409, "ABORTED")]
    [TestCase(412, "FAILED_PRECONDITION")]
    [TestCase(501, "UNIMPLEMENTED")]
    public void OtherErrorsAreNotRetriedAndMapToServiceException(int status, string name)
    {
        Server.FailNext(Get, Reply.Error(status, name, "nope"));
        var e = Assert.ThrowsAsync<ServiceException>(() => _store.GetMetadataAsync("images", "a.jpg"));
        Assert.That((e!.HttpStatus, e.Status, e.ServiceMessage), Is.EqualTo((status, name, "nope")));
        Assert.That(Server.RequestsOf(Get), Has.Count.EqualTo(1));
    }

    [Test]
    public void TheOlderStorageErrorShapeGetsItsStatusFromTheHttpCode()
    {
        Server.FailNext(Get, new Reply(403, """{"error":{"code":403,"message":"x@y does not have storage.objects.get access","errors":[{"domain":"global","reason":"forbidden","message":"x@y does not have storage.objects.get access"}]}}"""));
        var e = Assert.ThrowsAsync<ServiceException>(() => _store.GetMetadataAsync("images", "a.jpg"));
        Assert.That((e!.HttpStatus, e.Status, e.ServiceMessage), Is.EqualTo((403, "PERMISSION_DENIED", "x@y does not have storage.objects.get access")));
    }

    [Test]
    public void ANonJsonErrorKeepsItsText()
    {
        var e = GoogleApiErrors.FromBody(502, "<html>Bad Gateway</html>", "Bad Gateway");
        Assert.That((e.HttpStatus, e.Status, e.ServiceMessage), Is.EqualTo((502, "INTERNAL", "<html>Bad Gateway</html>")));
        var empty = GoogleApiErrors.FromBody(404, "", "Not Found");
        Assert.That((empty.Status, empty.ServiceMessage, empty.IsNotFound), Is.EqualTo(("NOT_FOUND", "Not Found", true)));
        var onlyErrors = GoogleApiErrors.FromBody(400, """{"error":{"code":400,"errors":[{"reason":"invalid","message":"bad name"}]}}""");
        Assert.That((onlyErrors.Status, onlyErrors.ServiceMessage), Is.EqualTo(("INVALID_ARGUMENT", "bad name")));
    }

    [Test]
    public async Task EveryAttemptCarriesTheBearerToken()
    {
        Server.FailNext(Get, Reply.Error(503, "UNAVAILABLE", "down"));
        await _store.GetMetadataAsync("images", "a.jpg");
        Assert.That(Server.RequestsOf(Get).Select(r => r.Headers.Authorization.ToString()), Is.All.EqualTo("Bearer test-token"));
    }

    [Test]
    public async Task TheApplicationDefaultTokenSourceIsRegisteredWhenNoneIsGiven()
    {
        var services = new ServiceCollection();
        ReverseImageSearch.Gcp.GcpServiceCollectionExtensions.AddGcpAdapters(services, GcpTestHost.Extension);
        await using var provider = services.BuildServiceProvider();
        Assert.That(provider.GetRequiredService<IAccessTokenSource>(), Is.InstanceOf<ApplicationDefaultAccessTokenSource>());
        Assert.That(provider.GetRequiredService<ITaskQueue>(), Is.InstanceOf<ReverseImageSearch.Gcp.Tasks.CloudTasksQueue>());
        Assert.That(provider.GetRequiredService<IVectorIndexService>(), Is.InstanceOf<ReverseImageSearch.Gcp.VertexAI.VertexVectorIndexService>());
        Assert.That(provider.GetRequiredService<IDocumentStore>(), Is.InstanceOf<ReverseImageSearch.Gcp.Firestore.FirestoreDocumentStore>());
    }

    [Test]
    public void EndpointsDefaultToGoogleAndHonourTheFirestoreEmulator()
    {
        var e = new GcpEndpoints();
        Assert.Multiple(() =>
        {
            Assert.That(e.EffectiveFirestoreBase.ToString(), Is.EqualTo("https://firestore.googleapis.com/v1"));
            Assert.That(e.VertexBaseFor("europe-west1").ToString(), Is.EqualTo("https://europe-west1-aiplatform.googleapis.com/v1"));
            Assert.That(e.PublicEndpointBaseFor("1.europe-west1-2.vdb.vertexai.goog").ToString(), Is.EqualTo("https://1.europe-west1-2.vdb.vertexai.goog/v1"));
            Assert.That(e.FunctionsBaseFor("us-central1", "p1"), Is.EqualTo("https://us-central1-p1.cloudfunctions.net"));
        });
        e.FirestoreEmulatorHost = "127.0.0.1:8080";
        Assert.That(e.EffectiveFirestoreBase.ToString(), Is.EqualTo("http://127.0.0.1:8080/v1"));
    }
}
