using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Gcp;
using ReverseImageSearch.Gcp.Http;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp;

/// <summary>The Gcp adapters, wired as in production (AddGcpAdapters), pointed at a local server.</summary>
public static class GcpTestHost
{
    public static ExtensionOptions Extension { get; } = new()
    {
        ProjectId = "demo-proj",
        InstanceId = "ris",
        Location = "us-central1",
        ImageBucket = "images",
    };

    public static ServiceProvider Build(
        ContractServer server,
        Action<GcpAdapterOptions>? adapters = null,
        Action<GcpEndpoints>? endpoints = null,
        Action<IServiceCollection>? before = null,
        ExtensionOptions? extension = null,
        Action<IServiceCollection>? after = null)
    {
        var services = new ServiceCollection();
        before?.Invoke(services);
        services.AddSingleton<IAccessTokenSource>(new FixedAccessTokenSource(server.ExpectedToken));
        var root = server.BaseUri.ToString().TrimEnd('/');
        services.AddGcpAdapters(
            extension ?? Extension,
            e =>
            {
                e.FirestoreEmulatorHost = null;
                e.FirestoreBase = new Uri(root + "/v1");
                e.StorageBase = new Uri(root + "/storage/v1");
                e.StorageUploadBase = new Uri(root + "/upload/storage/v1");
                e.CloudTasksBase = new Uri(root + "/v2");
                e.VertexBase = root + "/v1";
                e.PublicEndpointOverride = server.BaseUri;
                e.MetadataServerBase = new Uri(root + "/computeMetadata/v1");
                endpoints?.Invoke(e);
            },
            a =>
            {
                a.RetryBaseDelay = TimeSpan.FromMilliseconds(1);
                a.TransactionBaseDelay = TimeSpan.FromMilliseconds(1);
                a.ServiceAccountEmail = null;
                adapters?.Invoke(a);
            });
        after?.Invoke(services);
        return services.BuildServiceProvider();
    }
}

/// <summary>A contract server per fixture; every test must leave no violation behind.</summary>
public abstract class ContractTestBase
{
    protected ContractServer Server { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartServerAsync() => Server = await ContractServer.StartAsync("firestore.v1", "storage.v1", "cloudtasks.v2", "aiplatform.v1");

    [OneTimeTearDown]
    public async Task StopServerAsync() => await Server.DisposeAsync();

    [SetUp]
    public void ResetServer() => Server.Reset();

    [TearDown]
    public void NoViolations() => Server.AssertNoViolations();
}

[SetUpFixture]
public sealed class GcpTestsSetUp
{
    [OneTimeTearDown]
    public async Task AfterAllAsync()
    {
        await FirestoreEmulator.StopAsync();
        foreach (var (method, tests) in ContractServer.Coverage.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            TestContext.Progress.WriteLine($"contract coverage: {method}: {tests.Count} test(s)");
        }
    }
}
