using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Embedding;

public static partial class EmbeddingServiceCollectionExtensions
{
    /// <summary>
    /// Registers the ONNX image embedder as <see cref="IImageEmbedder"/>, made from the registered
    /// <see cref="ExtensionOptions"/>. Only the hosts of functions that embed call this (backfillTask,
    /// streamUpdateDatapoint, datapointWriteTask, queryIndex, and the emulator that runs them all).
    /// </summary>
    public static IServiceCollection AddImageEmbedder(this IServiceCollection services)
    {
        services.AddSingleton<IImageEmbedder>(sp => CreateEmbedder(sp.GetRequiredService<ExtensionOptions>(), sp.GetRequiredService<ILoggerFactory>()));
        return services;
    }

    // Resolved on first use, so the model loads with the first embedding, not at start. Blocking once here is safe:
    // hosts resolve services without a synchronization context.
    private static OnnxImageEmbedder CreateEmbedder(ExtensionOptions options, ILoggerFactory loggers)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(5) };
        var modelPath = ModelLocator.ResolveAsync(
            options.ModelUrl, options.ModelPrecision, http, Path.Combine(Path.GetTempPath(), "reverse-image-search-models"),
            loggers.CreateLogger(typeof(ModelLocator)), CancellationToken.None).GetAwaiter().GetResult();
        LogEmbeddingSettings(loggers.CreateLogger(typeof(EmbeddingServiceCollectionExtensions)), EmbeddingSettings.Of(options).ToString());
        return new OnnxImageEmbedder(
            new EmbedderOptions(modelPath, options.InputHeight, options.InputWidth, options.MaxImagePixels, Grayscale: !options.MatchColor,
                StoreViews: options.MatchCrops),
            loggers.CreateLogger<OnnxImageEmbedder>());
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Embedding with {Settings} (MATCH_COLOR=true: colour input, colours "
        + "matter; false: luma input, grayscale and recoloured copies match. MATCH_CROPS=true: every stored image also gets "
        + "up to 3 views, the squares at the ends of a wide or tall picture and its centre zoomed, so cropped copies find "
        + "it; up to 4 inferences and 4 vectors per image). The index records the settings its vectors were made with: "
        + "after changing MATCH_COLOR, MATCH_CROPS or the model on an existing installation, queries are refused and "
        + "uploads wait until every image is embedded again (a new installation) or the settings are set back.")]
    private static partial void LogEmbeddingSettings(ILogger logger, string settings);
}
