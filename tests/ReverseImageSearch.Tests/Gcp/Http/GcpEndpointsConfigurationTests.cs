using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Gcp;
using ReverseImageSearch.Gcp.Http;

namespace ReverseImageSearch.Tests.Gcp.Http;

public class GcpEndpointsConfigurationTests
{
    private static IConfiguration Configuration(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value)))
            .Build();

    [Test]
    public void WithoutOverridesEveryEndpointIsProductions()
    {
        var endpoints = GcpEndpoints.FromConfiguration(Configuration(("RIS_TEST_ACCESS_TOKEN", "t")));
        var defaults = new GcpEndpoints();
        Assert.Multiple(() =>
        {
            Assert.That(endpoints.StorageBase, Is.EqualTo(defaults.StorageBase));
            Assert.That(endpoints.StorageUploadBase, Is.EqualTo(defaults.StorageUploadBase));
            Assert.That(endpoints.CloudTasksBase, Is.EqualTo(defaults.CloudTasksBase));
            Assert.That(endpoints.VertexBase, Is.EqualTo(defaults.VertexBase));
            Assert.That(endpoints.PublicEndpointOverride, Is.Null);
            Assert.That(endpoints.FunctionsBase, Is.EqualTo(defaults.FunctionsBase));
            Assert.That(endpoints.MetadataServerBase, Is.EqualTo(defaults.MetadataServerBase));
            Assert.That(endpoints.UsesFirestoreEmulator, Is.False);
            Assert.That(endpoints.FixedAccessToken, Is.Null, "a fixed token is ignored while every API is Google's");
        });
    }

    [Test]
    public void OverridesComeFromConfiguration()
    {
        var endpoints = GcpEndpoints.FromConfiguration(Configuration(
            ("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8081"),
            ("STORAGE_EMULATOR_HOST", "127.0.0.1:9199"),
            ("RIS_TEST_CLOUD_TASKS_BASE", "http://127.0.0.1:9000/v2"),
            ("RIS_TEST_VERTEX_BASE", "http://127.0.0.1:9001/v1"),
            ("RIS_TEST_VECTOR_SEARCH_QUERY_BASE", "http://127.0.0.1:9002"),
            ("RIS_TEST_FUNCTIONS_BASE", "http://127.0.0.1:9003/{PROJECT_ID}/{LOCATION}"),
            ("GCE_METADATA_HOST", "127.0.0.1:9004"),
            ("RIS_TEST_ACCESS_TOKEN", "fixed")));
        Assert.Multiple(() =>
        {
            Assert.That(endpoints.EffectiveFirestoreBase, Is.EqualTo(new Uri("http://127.0.0.1:8081/v1")));
            Assert.That(endpoints.StorageBase, Is.EqualTo(new Uri("http://127.0.0.1:9199/storage/v1")));
            Assert.That(endpoints.StorageUploadBase, Is.EqualTo(new Uri("http://127.0.0.1:9199/upload/storage/v1")));
            Assert.That(endpoints.CloudTasksBase, Is.EqualTo(new Uri("http://127.0.0.1:9000/v2")));
            Assert.That(endpoints.VertexBaseFor("europe-west1"), Is.EqualTo(new Uri("http://127.0.0.1:9001/v1")));
            Assert.That(endpoints.PublicEndpointBaseFor("1.us-central1-2.vdb.vertexai.goog"), Is.EqualTo(new Uri("http://127.0.0.1:9002/v1")));
            Assert.That(endpoints.FunctionsBaseFor("us-central1", "demo-proj"), Is.EqualTo("http://127.0.0.1:9003/demo-proj/us-central1"));
            Assert.That(endpoints.MetadataServerBase, Is.EqualTo(new Uri("http://127.0.0.1:9004/computeMetadata/v1")));
            Assert.That(endpoints.FixedAccessToken, Is.EqualTo("fixed"));
        });
    }

    [Test]
    public void StorageEmulatorHostMayBeAUrl()
    {
        var endpoints = GcpEndpoints.FromConfiguration(Configuration(("STORAGE_EMULATOR_HOST", "https://storage.local:4443/")));
        Assert.That(endpoints.StorageBase, Is.EqualTo(new Uri("https://storage.local:4443/storage/v1")));
    }

    [Test]
    public async Task TheFixedTokenReplacesApplicationDefaultCredentialsOnlyWithAnOverride()
    {
        await using var overridden = new ServiceCollection()
            .AddGcpAdapters(GcpTestHost.Extension, Configuration(("RIS_TEST_VERTEX_BASE", "http://127.0.0.1:1/v1"), ("RIS_TEST_ACCESS_TOKEN", "fixed")))
            .BuildServiceProvider();
        await using var production = new ServiceCollection()
            .AddGcpAdapters(GcpTestHost.Extension, Configuration(("RIS_TEST_ACCESS_TOKEN", "fixed"), ("SERVICE_ACCOUNT_EMAIL", "sa@demo-proj.iam.gserviceaccount.com")))
            .BuildServiceProvider();

        var token = await overridden.GetRequiredService<IAccessTokenSource>().GetAccessTokenAsync(CancellationToken.None);
        Assert.Multiple(() =>
        {
            Assert.That(token, Is.EqualTo("fixed"));
            Assert.That(production.GetRequiredService<IAccessTokenSource>(), Is.InstanceOf<ApplicationDefaultAccessTokenSource>());
            Assert.That(production.GetRequiredService<GcpAdapterOptions>().ServiceAccountEmail, Is.EqualTo("sa@demo-proj.iam.gserviceaccount.com"));
        });
    }
}
