using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;

namespace ReverseImageSearch.Core;

public static class CoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers the validated options and the Core services the functions use. Adapters of the ports
    /// (object store, document store, task queue, vector index) are registered by the host's adapter set; the image
    /// embedder only by the hosts of functions that embed (ReverseImageSearch.Embedding's AddImageEmbedder).
    /// </summary>
    public static IServiceCollection AddReverseImageSearchCore(this IServiceCollection services, ExtensionOptions options)
    {
        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<CoordinationDocuments>();
        services.AddSingleton<ImageScope>();
        services.AddSingleton<CoordinationState>();
        services.AddSingleton<BackfillCoordinator>();
        services.AddSingleton<InstallationCheck>();
        services.AddSingleton<IndexGate>();
        services.AddSingleton<DatapointSync>();
        return services;
    }
}
