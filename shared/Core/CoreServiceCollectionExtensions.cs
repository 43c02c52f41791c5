using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Embedding;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Core;

public static partial class CoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers the validated options and the Core services the functions use. Adapters of the ports
    /// (object store, document store, task queue, vector index) are registered by the host's adapter set.
    /// </summary>
    public static IServiceCollection AddReverseImageSearchCore(this IServiceCollection services, ExtensionOptions options)
    {
        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<CoordinationDocuments>();
        services.AddSingleton<ImageScope>();
        services.AddSingleton<CoordinationState>();
        services.AddSingleton<BackfillCoordinator>();
        services.AddSingleton<IndexGate>();
        services.AddSingleton<DatapointSync>();
        services.AddSingleton<IImageEmbedder>(sp => CreateEmbedder(options, sp.GetRequiredService<ILoggerFactory>()));
        return services;
    }

    // Resolved on first use, so functions that never embed (createIndexTrigger, onIndexCreated, ...) never
    // load the model. Blocking once here is safe: hosts resolve services without a synchronization context.
    private static OnnxImageEmbedder CreateEmbedder(ExtensionOptions options, ILoggerFactory loggers)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(5) };
        var modelPath = ModelLocator.ResolveAsync(
            options.ModelUrl, options.ModelPrecision, http, Path.Combine(Path.GetTempPath(), "reverse-image-search-models"),
            loggers.CreateLogger(typeof(ModelLocator)), CancellationToken.None).GetAwaiter().GetResult();
        LogEmbeddingSettings(loggers.CreateLogger(typeof(CoreServiceCollectionExtensions)), EmbeddingSettings.Of(options).ToString());
        return new OnnxImageEmbedder(
            new EmbedderOptions(modelPath, options.InputHeight, options.InputWidth, options.MaxImagePixels, Grayscale: !options.MatchColor),
            loggers.CreateLogger<OnnxImageEmbedder>());
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Embedding with {Settings} (MATCH_COLOR=true: colour input, colours "
        + "matter; false: luma input, grayscale and recoloured copies match). The index records the settings its vectors "
        + "were made with: after changing MATCH_COLOR or the model on an existing installation, queries are refused and "
        + "uploads wait until every image is embedded again (a new installation) or the settings are set back.")]
    private static partial void LogEmbeddingSettings(ILogger logger, string settings);
}
