using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Embedding;

/// <summary>Turns the MODEL_URL parameter into a local ONNX file: the bundled model, a local path, or a cached download.</summary>
public static partial class ModelLocator
{
    /// <param name="precision">Which bundled model an empty MODEL_URL means.</param>
    public static async Task<string> ResolveAsync(
        string? modelUrl, ModelPrecision precision, HttpClient http, string cacheDirectory, ILogger logger, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentException.ThrowIfNullOrEmpty(cacheDirectory);
        ArgumentNullException.ThrowIfNull(logger);

        if (string.IsNullOrWhiteSpace(modelUrl))
        {
            var bundled = EmbedderOptions.BundledModelPathFor(precision);
            return File.Exists(bundled)
                ? bundled
                : throw new FileNotFoundException($"MODEL_URL is empty, so the bundled model is used, but it is missing at {bundled}.", bundled);
        }

        if (!Uri.TryCreate(modelUrl, UriKind.Absolute, out var uri) || uri.IsFile)
        {
            var path = Path.GetFullPath(uri?.LocalPath ?? modelUrl);
            return File.Exists(path)
                ? path
                : throw new FileNotFoundException($"MODEL_URL {modelUrl}: no model file at {path}.", path);
        }

        if (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp)
        {
            throw new InvalidOperationException($"MODEL_URL {modelUrl}: only http(s) URLs and local file paths are supported.");
        }

        // The original took a TF.js model.json; say so plainly instead of failing later inside ONNX Runtime.
        if (uri.AbsolutePath.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"MODEL_URL {modelUrl}: must point to an ONNX model (.onnx); TF.js model.json is not supported.");
        }

        return await DownloadOnceAsync(uri, http, cacheDirectory, logger, ct);
    }

    private static async Task<string> DownloadOnceAsync(Uri uri, HttpClient http, string cacheDirectory, ILogger logger, CancellationToken ct)
    {
        var url = uri.OriginalString;
        Directory.CreateDirectory(cacheDirectory);
        var cached = Path.Combine(cacheDirectory, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(url))) + ".onnx");
        if (File.Exists(cached))
        {
            LogReusingCachedModel(logger, url, cached);
            return cached;
        }

        // Written under a unique name and renamed into place, so a crash or a concurrent download never leaves a partial model.
        var temporary = cached + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            using (var response = await SendAsync(uri, http, ct))
            {
                if (!response.IsSuccessStatusCode)
                {
                    throw new InvalidOperationException(
                        $"MODEL_URL {url}: download failed with HTTP {(int)response.StatusCode} {response.ReasonPhrase}.");
                }

                await using var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                await response.Content.CopyToAsync(file, ct);
            }

            File.Move(temporary, cached, overwrite: true);
            LogDownloadedModel(logger, url, cached);
            return cached;
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    private static async Task<HttpResponseMessage> SendAsync(Uri uri, HttpClient http, CancellationToken ct)
    {
        try
        {
            return await http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException ex)
        {
            throw new InvalidOperationException($"MODEL_URL {uri.OriginalString}: download failed: {ex.Message}", ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Using the cached model {Path} downloaded from {Url}")]
    private static partial void LogReusingCachedModel(ILogger logger, string url, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Downloaded the model {Url} to {Path}")]
    private static partial void LogDownloadedModel(ILogger logger, string url, string path);
}
