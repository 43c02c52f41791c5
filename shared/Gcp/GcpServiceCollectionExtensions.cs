using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Gcp.Firestore;
using ReverseImageSearch.Gcp.Http;
using ReverseImageSearch.Gcp.Storage;
using ReverseImageSearch.Gcp.Tasks;
using ReverseImageSearch.Gcp.VertexAI;

namespace ReverseImageSearch.Gcp;

public static class GcpServiceCollectionExtensions
{
    /// <summary>Registers the Google Cloud adapters of every Core port (Firestore, Cloud Storage, Cloud Tasks, Vertex AI).</summary>
    public static IServiceCollection AddGcpAdapters(this IServiceCollection services, ExtensionOptions options) =>
        AddGcpAdapters(services, options, configureEndpoints: null, configureAdapters: null);

    /// <summary>
    /// Registers the Google Cloud adapters with endpoints and tuning read from <paramref name="configuration"/>
    /// (<see cref="GcpEndpoints.FromConfiguration"/>: emulator and test overrides, SERVICE_ACCOUNT_EMAIL).
    /// With a test override active and RIS_TEST_ACCESS_TOKEN set, that fixed token replaces Application Default Credentials.
    /// </summary>
    public static IServiceCollection AddGcpAdapters(this IServiceCollection services, ExtensionOptions options, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        var configured = GcpEndpoints.FromConfiguration(configuration);
        var adapters = GcpAdapterOptions.FromConfiguration(configuration);
        if (configured.FixedAccessToken is { } token)
        {
            services.TryAddSingleton<IAccessTokenSource>(new FixedAccessTokenSource(token));
        }

        return Register(services, options, configured, adapters);
    }

    /// <summary>
    /// Registers the Google Cloud adapters with the HTTP pipeline (retries, bearer token). Endpoints and tuning
    /// start from the environment (FIRESTORE_EMULATOR_HOST, SERVICE_ACCOUNT_EMAIL) and can be adjusted.
    /// An <see cref="IAccessTokenSource"/> registered before this call replaces Application Default Credentials.
    /// </summary>
    public static IServiceCollection AddGcpAdapters(
        this IServiceCollection services,
        ExtensionOptions options,
        Action<GcpEndpoints>? configureEndpoints,
        Action<GcpAdapterOptions>? configureAdapters)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        var endpoints = GcpEndpoints.FromEnvironment();
        configureEndpoints?.Invoke(endpoints);
        var adapterOptions = GcpAdapterOptions.FromEnvironment();
        configureAdapters?.Invoke(adapterOptions);
        return Register(services, options, endpoints, adapterOptions);
    }

    private static IServiceCollection Register(IServiceCollection services, ExtensionOptions options, GcpEndpoints endpoints, GcpAdapterOptions adapterOptions)
    {
        ArgumentNullException.ThrowIfNull(options);
        services.TryAddSingleton(options);
        services.AddSingleton(endpoints);
        services.AddSingleton(adapterOptions);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IAccessTokenSource, ApplicationDefaultAccessTokenSource>();

        services.AddHttpClient(GcpHttpPipeline.GoogleClient, ConfigureClient)
            .AddGooglePipeline(adapterOptions, endpoints, sp => sp.GetRequiredService<IAccessTokenSource>());
        services.AddHttpClient(GcpHttpPipeline.FirestoreClient, ConfigureClient)
            .AddGooglePipeline(
                adapterOptions,
                endpoints,
                sp => endpoints.UsesFirestoreEmulator ? new FixedAccessTokenSource("owner") : sp.GetRequiredService<IAccessTokenSource>());
        services.AddHttpClient(GcpHttpPipeline.MetadataClient).AddGooglePipeline(adapterOptions, endpoints, tokens: null);

        services.AddSingleton<IDocumentStore>(sp => new FirestoreDocumentStore(
            Client(sp, GcpHttpPipeline.FirestoreClient), endpoints, adapterOptions, options.ProjectId));
        services.AddSingleton<IObjectStore>(sp => new CloudStorageObjectStore(Client(sp, GcpHttpPipeline.GoogleClient), endpoints, adapterOptions));
        services.AddSingleton<IServiceAccountEmailSource>(sp => new ServiceAccountEmailSource(
            adapterOptions, sp.GetRequiredService<IHttpClientFactory>(), endpoints));
        services.AddSingleton<ITaskQueue>(sp => new CloudTasksQueue(
            Client(sp, GcpHttpPipeline.GoogleClient),
            endpoints,
            adapterOptions,
            options,
            sp.GetRequiredService<IServiceAccountEmailSource>(),
            sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IVectorIndexService>(sp => new VertexVectorIndexService(
            Client(sp, GcpHttpPipeline.GoogleClient), endpoints, adapterOptions, options));
        return services;
    }

    private static void ConfigureClient(HttpClient client) =>
        // The pipeline's per-attempt timeout bounds each try; the whole call with its retries may take longer.
        client.Timeout = Timeout.InfiniteTimeSpan;

    private static GoogleRestClient Client(IServiceProvider sp, string name)
    {
        var factory = sp.GetRequiredService<IHttpClientFactory>();
        return new GoogleRestClient(() => factory.CreateClient(name));
    }
}
