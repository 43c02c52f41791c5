using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Gcp.Http;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp.Http;

/// <summary>
/// The service account's token goes to Google API hosts only. queryIndex reads the query host from the metadata
/// document, which anyone able to write that document controls: a host that is not a Vector Search endpoint domain
/// gets no request and no token, and the caller gets an error that says why.
/// </summary>
public sealed class TokenDestinationTests : ContractTestBase
{
    private const string FindNeighbors = "aiplatform.projects.locations.indexEndpoints.findNeighbors";
    private const string Endpoint = "projects/demo-proj/locations/us-central1/indexEndpoints/222";

    [TestCase("attacker.example.com")]
    [TestCase("127.0.0.1")]
    [TestCase("vdb.vertexai.goog.attacker.example")]
    [TestCase("1.us-central1-2.vdb.vertexai.goog@attacker.example")]
    [TestCase("1.us-central1-2.vdb.vertexai.goog/x")]
    [TestCase("1.us-central1-2.vdb.vertexai.goog:8443")]
    public void AQueryHostThatIsNotAVectorSearchDomainGetsNoRequest(string domain)
    {
        Server.Handle(FindNeighbors, _ => Reply.Ok("""{"nearestNeighbors":[]}"""));
        using var services = GcpTestHost.Build(Server);
        var vertex = services.GetRequiredService<IVectorIndexService>();

        var e = Assert.ThrowsAsync<ServiceException>(() => vertex.FindNeighborsAsync(domain, Endpoint, "ext_ris_index", [new NeighborQuery("q", [1f])], 1));

        Assert.That(e!.ServiceMessage, Does.Contain(domain).And.Contain("vdb.vertexai.goog"));
        Assert.That(Server.RequestsOf(FindNeighbors), Is.Empty);
    }

    [TestCase("1957880287.us-central1-181224308459.vdb.vertexai.goog")]
    [TestCase("1.EUROPE-WEST1-2.VDB.VERTEXAI.GOOG")]
    public void VectorSearchDomainsAreAccepted(string domain) =>
        Assert.That(GcpEndpoints.IsVectorSearchDomain(domain), Is.True);

    [TestCase("https://us-central1-aiplatform.googleapis.com/v1/x", true)]
    [TestCase("https://firestore.googleapis.com/v1/x", true)]
    [TestCase("https://1.us-central1-2.vdb.vertexai.goog/v1/x", true)]
    [TestCase("https://googleapis.com.attacker.example/v1/x", false)]
    [TestCase("https://attacker.example/v1/x", false)]
    [TestCase("http://us-central1-aiplatform.googleapis.com/v1/x", false)]
    public void OnlyGoogleApiHostsOverHttpsReceiveTheTokenByDefault(string url, bool allowed) =>
        Assert.That(new GcpEndpoints().MayReceiveToken(new Uri(url)), Is.EqualTo(allowed));

    [Test]
    public void TheBearerHandlerRefusesAHostOutsideTheAllowList()
    {
        using var services = GcpTestHost.Build(Server);
        var client = services.GetRequiredService<IHttpClientFactory>().CreateClient(GcpHttpPipeline.GoogleClient);
        // A loopback address other than the test server's: the configured endpoints do not name it.
        var elsewhere = new UriBuilder(Server.BaseUri) { Host = "127.0.0.2" }.Uri;

        var e = Assert.ThrowsAsync<TokenDestinationException>(() => client.GetAsync(new Uri(elsewhere, "/v1/anything")));

        // Refused before sending (a send would fail with a connection error, which the pipeline retries).
        Assert.That(e!.Message, Does.Contain("127.0.0.2"));
    }
}
