using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

/// <summary>
/// queryIndex (callable; a signed-in Firebase user): data {query?: [base64 image, ...], paths?: [stored object name, ...],
/// folder?: "a/b", neighbours?: n}. Embeds every query image and searches with each, and searches with the stored vector
/// of every path ("more like this": nothing is downloaded or embedded again, the image itself is left out of its own
/// answer), answering the original's shape {status: "ok", message: "Query successful", data: {nearestNeighbors: [one
/// entry per image, then one per path]}}; an image's entry has its position as id ("0", "1", ...), a path's the path.
/// With a folder, only images under it (any depth) answer.
/// </summary>
public sealed partial class QueryIndex(
    IImageEmbedder embedder,
    IVectorIndexService vectorIndex,
    CoordinationState state,
    ExtensionOptions options,
    ILogger<QueryIndex> logger) : ICallableFunction
{
    public const int DefaultNeighbours = 10;
    public const int MaxNeighbours = 1000;

    public async Task<object?> HandleAsync(CallableRequest request, CancellationToken cancellationToken)
    {
        using var timing = Telemetry.TimeQuery();
        if (request.Auth is null)
        {
            throw new FunctionException(FunctionErrorCode.Unauthenticated, "The function must be called while signed in with Firebase Auth.");
        }

        var images = ReadQueryImages(request.Data);
        var paths = ReadPaths(request.Data);
        if (images.Length + paths.Length == 0)
        {
            throw Invalid("The function must be called with \"query\" (an array of base64-encoded images), \"paths\" (an array of stored object names), or both.");
        }

        if (images.Length + paths.Length > options.MaxQueryImages)
        {
            throw Invalid($"The call asks for {images.Length + paths.Length} searches (query and paths together); at most {options.MaxQueryImages} are allowed per call.");
        }

        var neighbours = ReadNeighbours(request.Data);
        var folder = ReadFolder(request.Data);

        var index = await state.ReadIndexAvailabilityAsync(cancellationToken);
        if (index.EmbeddingMismatch is { } mismatch)
        {
            throw new FunctionException(FunctionErrorCode.FailedPrecondition, mismatch, new { status = index.Status });
        }

        if (index.Deployed is not { } deployed)
        {
            throw new FunctionException(FunctionErrorCode.FailedPrecondition,
                $"The index is not ready for queries yet: {index.Describe()}.", new { status = index.Status });
        }

        var queries = new List<NeighborQuery>(images.Length + paths.Length);
        if (images.Length > 0)
        {
            var embeddings = await embedder.EmbedAsync(images, cancellationToken);
            for (var i = 0; i < embeddings.Count; i++)
            {
                queries.Add(embeddings[i].Vector is { } vector
                    ? new NeighborQuery(i.ToString(CultureInfo.InvariantCulture), vector, folder)
                    : throw new FunctionException(FunctionErrorCode.InvalidArgument,
                        $"query[{i}] is not a usable image: {embeddings[i].RejectionReason}", new { index = i, reason = embeddings[i].RejectionReason }));
            }
        }

        queries.AddRange(await StoredQueriesAsync(deployed, paths, folder, cancellationToken));

        // A path's own image is its nearest: one more is asked for, and the image is taken out of its answer.
        var asked = paths.Length > 0 ? Math.Min(neighbours + 1, MaxNeighbours) : neighbours;
        IReadOnlyList<QueryNeighbors> results;
        try
        {
            results = await vectorIndex.FindNeighborsAsync(
                deployed.PublicEndpointDomainName, deployed.IndexEndpoint, options.DeployedIndexId, queries, asked, cancellationToken);
        }
        catch (ServiceException ex)
        {
            LogQueryFailed(logger, ex);
            throw new FunctionException(FunctionErrorCode.Internal, "Error querying the index", ex.Message);
        }

        var response = new QueryResponse("ok", "Query successful", new NearestNeighborsData(
            results.Select((r, i) => new NearestNeighborsEntry(r.Id, r.Neighbors
                .Where(n => i < images.Length || n.DatapointId != queries[i].DatapointId)
                .Take(neighbours)
                .Select(n => new NeighborEntry(new DatapointEntry(n.DatapointId, new CrowdingTagEntry(n.CrowdingAttribute)), n.Distance)).ToArray())).ToArray()));
        return JsonSerializer.SerializeToElement(response, CoreJson.Options);
    }

    /// <summary>The stored vector of every path, searched with as it is; a path the index does not hold is not-found, named.</summary>
    private async Task<IReadOnlyList<NeighborQuery>> StoredQueriesAsync(
        DeployedIndex deployed, string[] paths, string? folder, CancellationToken cancellationToken)
    {
        if (paths.Length == 0)
        {
            return [];
        }

        IReadOnlyList<IndexDatapoint> stored;
        try
        {
            stored = await vectorIndex.ReadDatapointsAsync(
                deployed.PublicEndpointDomainName, deployed.IndexEndpoint, options.DeployedIndexId, paths, cancellationToken);
        }
        catch (ServiceException ex)
        {
            LogQueryFailed(logger, ex);
            throw new FunctionException(FunctionErrorCode.Internal, "Error reading the stored images from the index", ex.Message);
        }

        var vectors = stored.GroupBy(d => d.DatapointId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().FeatureVector, StringComparer.Ordinal);
        var missing = paths.Where(p => !vectors.ContainsKey(p)).Distinct(StringComparer.Ordinal).ToArray();
        if (missing.Length > 0)
        {
            throw new FunctionException(FunctionErrorCode.NotFound,
                $"Not in the index (no such image, or not indexed yet): {string.Join(", ", missing.Select(m => JsonSerializer.Serialize(m, CoreJson.Options)))}.",
                new { paths = missing });
        }

        return paths.Select(p => new NeighborQuery(p, vectors[p], folder)).ToArray();
    }

    // "query" may be left out when "paths" is given; the two together must ask for something.
    private ReadOnlyMemory<byte>[] ReadQueryImages(JsonElement data)
    {
        if (data.ValueKind != JsonValueKind.Object)
        {
            throw Invalid("The function must be called with an object: {\"query\": [base64 images]} and/or {\"paths\": [stored object names]}.");
        }

        if (!data.TryGetProperty("query", out var query) || query.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return [];
        }

        if (query.ValueKind != JsonValueKind.Array || (query.GetArrayLength() == 0 && !HasPaths(data)))
        {
            throw Invalid("The `query` argument must be an array of Base64 strings.");
        }

        if (query.GetArrayLength() > options.MaxQueryImages)
        {
            throw Invalid($"The `query` argument holds {query.GetArrayLength()} images; at most {options.MaxQueryImages} are allowed per call.");
        }

        var images = new ReadOnlyMemory<byte>[query.GetArrayLength()];
        var i = 0;
        foreach (var item in query.EnumerateArray())
        {
            images[i] = item.ValueKind == JsonValueKind.String && TryDecodeBase64(item.GetString()!, out var bytes)
                ? bytes
                : throw Invalid($"query[{i}] must be a Base64 string.", new { index = i });
            if (images[i].IsEmpty)
            {
                throw Invalid($"query[{i}] is empty: an image of zero bytes.", new { index = i });
            }

            if (images[i].Length > options.MaxImageBytes)
            {
                throw Invalid($"query[{i}] is {images[i].Length} bytes, more than the limit of {options.MaxImageBytes}.", new { index = i });
            }

            i++;
        }

        return images;
    }

    private static bool HasPaths(JsonElement data) =>
        data.TryGetProperty("paths", out var paths) && paths.ValueKind == JsonValueKind.Array && paths.GetArrayLength() > 0;

    // Object names as Cloud Storage allows them (1 to 1024 bytes of UTF-8, anything else goes): they are only looked up.
    private string[] ReadPaths(JsonElement data)
    {
        if (!data.TryGetProperty("paths", out var value) || value.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return [];
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            throw Invalid("The `paths` argument must be an array of stored object names, for example [\"folder/a.jpg\"].");
        }

        if (value.GetArrayLength() > options.MaxQueryImages)
        {
            throw Invalid($"The `paths` argument holds {value.GetArrayLength()} names; at most {options.MaxQueryImages} are allowed per call.");
        }

        var paths = new string[value.GetArrayLength()];
        var i = 0;
        foreach (var item in value.EnumerateArray())
        {
            paths[i] = item.ValueKind == JsonValueKind.String && item.GetString() is { Length: > 0 } path
                ? path
                : throw Invalid($"paths[{i}] must be a non-empty string: the name of a stored image.", new { index = i });
            if (Encoding.UTF8.GetByteCount(paths[i]) > ImageFolders.MaxFolderBytes)
            {
                throw Invalid($"paths[{i}] is longer than an object name can be ({ImageFolders.MaxFolderBytes} bytes).", new { index = i });
            }

            i++;
        }

        return paths;
    }

    // A folder of the bucket, slashes around it optional; empty or absent: the whole bucket.
    private static string? ReadFolder(JsonElement data)
    {
        if (!data.TryGetProperty("folder", out var value) || value.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw Invalid("The `folder` argument must be a string: a folder of the bucket, for example \"products/dresses\".");
        }

        var folder = ImageFolders.Normalize(value.GetString()!);
        if (Encoding.UTF8.GetByteCount(folder) > ImageFolders.MaxFolderBytes)
        {
            throw Invalid($"The `folder` argument is longer than an object name can be ({ImageFolders.MaxFolderBytes} bytes).");
        }

        return folder.Length == 0 ? null : folder;
    }

    // The original took parseInt(neighbours) || 10: a number or numeric string, anything else the default.
    private static int ReadNeighbours(JsonElement data)
    {
        if (!data.TryGetProperty("neighbours", out var value))
        {
            return DefaultNeighbours;
        }

        long? requested = value.ValueKind switch
        {
            JsonValueKind.Number when value.TryGetDouble(out var d) => (long)Math.Truncate(d),
            JsonValueKind.String when long.TryParse(value.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) => l,
            _ => null,
        };
        return requested switch
        {
            null or <= 0 => DefaultNeighbours,
            > MaxNeighbours => throw Invalid($"`neighbours` may be at most {MaxNeighbours}."),
            _ => (int)requested,
        };
    }

    // Accepts plain base64 and data URLs ("data:image/png;base64,...") as browsers produce them.
    // The decoded bytes stay in the buffer they were decoded into (no second copy of a 32 MiB image).
    private static bool TryDecodeBase64(string text, out ReadOnlyMemory<byte> bytes)
    {
        var comma = text.StartsWith("data:", StringComparison.Ordinal) ? text.IndexOf(',', StringComparison.Ordinal) : -1;
        var payload = comma >= 0 ? text.AsSpan(comma + 1) : text.AsSpan();
        var buffer = new byte[payload.Length * 3 / 4 + 3];
        if (Convert.TryFromBase64Chars(payload, buffer, out var written))
        {
            bytes = buffer.AsMemory(0, written);
            return true;
        }

        bytes = default;
        return false;
    }

    private static FunctionException Invalid(string message, object? details = null) =>
        new(FunctionErrorCode.InvalidArgument, message, details);

    [LoggerMessage(Level = LogLevel.Error, Message = "Error querying the index")]
    private static partial void LogQueryFailed(ILogger logger, Exception exception);

    private sealed record QueryResponse(string Status, string Message, NearestNeighborsData Data);

    private sealed record NearestNeighborsData(NearestNeighborsEntry[] NearestNeighbors);

    private sealed record NearestNeighborsEntry(string Id, NeighborEntry[] Neighbors);

    private sealed record NeighborEntry(DatapointEntry Datapoint, double Distance);

    private sealed record DatapointEntry(string DatapointId, CrowdingTagEntry CrowdingTag);

    private sealed record CrowdingTagEntry([property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? CrowdingAttribute);
}
