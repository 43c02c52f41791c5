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
/// With a folder, only images under it (any depth) answer. The callable's data is read into a <see cref="QueryIndexRequest"/>
/// and answered by <see cref="QueryAsync"/>, which the emulator's command line calls directly.
/// </summary>
public sealed partial class QueryIndex(
    IImageEmbedder embedder,
    IVectorIndexService vectorIndex,
    CoordinationState state,
    ExtensionOptions options,
    ILogger<QueryIndex> logger) : ICallableFunction
{
    public const int DefaultNeighbors = 10;
    public const int MaxNeighbors = 1000;

    public async Task<object?> HandleAsync(CallableRequest request, CancellationToken cancellationToken)
    {
        using var timing = Telemetry.TimeQuery();
        if (request.Auth is null)
        {
            throw new FunctionException(FunctionErrorCode.Unauthenticated, "The function must be called while signed in with Firebase Auth.");
        }

        return await AnswerAsync(ReadRequest(request.Data), cancellationToken);
    }

    /// <summary>The neighbours of every image, then of every stored path, as the callable answers them.</summary>
    /// <exception cref="FunctionException">The request is refused (invalid-argument, not-found naming the paths,
    /// failed-precondition while the index is not ready) or the index failed (internal).</exception>
    public async Task<QueryIndexResponse> QueryAsync(QueryIndexRequest request, CancellationToken cancellationToken)
    {
        using var timing = Telemetry.TimeQuery();
        return await AnswerAsync(request, cancellationToken);
    }

    private async Task<QueryIndexResponse> AnswerAsync(QueryIndexRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (images, paths) = (request.Images, request.Paths);
        Validate(request);
        var folder = NormalizeFolder(request.Folder);

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

        var queries = new List<NeighborQuery>(images.Count + paths.Count);
        if (images.Count > 0)
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
        var neighbors = request.Neighbors;
        var asked = paths.Count > 0 ? Math.Min(neighbors + 1, MaxNeighbors) : neighbors;
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

        return new QueryIndexResponse("ok", "Query successful", new NearestNeighborsData(
            results.Select((r, i) => new NearestNeighborsEntry(r.Id, r.Neighbors
                .Where(n => i < images.Count || n.DatapointId != queries[i].DatapointId)
                .Take(neighbors)
                .Select(n => new NeighborEntry(new DatapointEntry(n.DatapointId, new CrowdingTagEntry(n.CrowdingAttribute)), n.Distance)).ToArray())).ToArray()));
    }

    /// <summary>The stored vector of every path, searched with as it is; a path the index does not hold is not-found, named.</summary>
    private async Task<IReadOnlyList<NeighborQuery>> StoredQueriesAsync(
        DeployedIndex deployed, IReadOnlyList<string> paths, string? folder, CancellationToken cancellationToken)
    {
        if (paths.Count == 0)
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

    // What the callable's data and a direct call must both satisfy; the messages name the callable's arguments.
    private void Validate(QueryIndexRequest request)
    {
        for (var i = 0; i < request.Images.Count; i++)
        {
            if (request.Images[i].IsEmpty)
            {
                throw Invalid($"query[{i}] is empty: an image of zero bytes.", new { index = i });
            }

            if (request.Images[i].Length > options.MaxImageBytes)
            {
                throw Invalid($"query[{i}] is {request.Images[i].Length} bytes, more than the limit of {options.MaxImageBytes}.", new { index = i });
            }
        }

        // Object names as Cloud Storage allows them (1 to 1024 bytes of UTF-8, anything else goes): they are only looked up.
        for (var i = 0; i < request.Paths.Count; i++)
        {
            if (string.IsNullOrEmpty(request.Paths[i]))
            {
                throw Invalid($"paths[{i}] must be a non-empty string: the name of a stored image.", new { index = i });
            }

            if (Encoding.UTF8.GetByteCount(request.Paths[i]) > ImageFolders.MaxFolderBytes)
            {
                throw Invalid($"paths[{i}] is longer than an object name can be ({ImageFolders.MaxFolderBytes} bytes).", new { index = i });
            }
        }

        var searches = request.Images.Count + request.Paths.Count;
        if (searches == 0)
        {
            throw Invalid("The function must be called with \"query\" (an array of base64-encoded images), \"paths\" (an array of stored object names), or both.");
        }

        if (searches > options.MaxQueryImages)
        {
            throw Invalid($"The call asks for {searches} searches (query and paths together); at most {options.MaxQueryImages} are allowed per call.");
        }

        if (request.Neighbors > MaxNeighbors)
        {
            throw Invalid($"`neighbours` may be at most {MaxNeighbors}.");
        }

        if (request.Neighbors < 1)
        {
            throw Invalid("`neighbours` must be at least 1.");
        }
    }

    // A folder of the bucket, slashes around it optional; empty or absent: the whole bucket.
    private static string? NormalizeFolder(string? requested)
    {
        var folder = ImageFolders.Normalize(requested ?? "");
        if (Encoding.UTF8.GetByteCount(folder) > ImageFolders.MaxFolderBytes)
        {
            throw Invalid($"The `folder` argument is longer than an object name can be ({ImageFolders.MaxFolderBytes} bytes).");
        }

        return folder.Length == 0 ? null : folder;
    }

    /// <summary>The callable's data as a request: base64 decoded, JSON types checked; the rest is <see cref="Validate"/>'s.</summary>
    private QueryIndexRequest ReadRequest(JsonElement data)
    {
        if (data.ValueKind != JsonValueKind.Object)
        {
            throw Invalid("The function must be called with an object: {\"query\": [base64 images]} and/or {\"paths\": [stored object names]}.");
        }

        return new QueryIndexRequest(ReadQueryImages(data), ReadPaths(data), ReadNeighbors(data), ReadFolder(data));
    }

    // "query" may be left out when "paths" is given; the two together must ask for something.
    private ReadOnlyMemory<byte>[] ReadQueryImages(JsonElement data)
    {
        if (!data.TryGetProperty("query", out var query) || query.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return [];
        }

        if (query.ValueKind != JsonValueKind.Array || (query.GetArrayLength() == 0 && !HasPaths(data)))
        {
            throw Invalid("The `query` argument must be an array of Base64 strings.");
        }

        // Counted before anything is decoded.
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
            i++;
        }

        return images;
    }

    private static bool HasPaths(JsonElement data) =>
        data.TryGetProperty("paths", out var paths) && paths.ValueKind == JsonValueKind.Array && paths.GetArrayLength() > 0;

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

        return value.EnumerateArray()
            .Select((item, i) => item.ValueKind == JsonValueKind.String
                ? item.GetString()!
                : throw Invalid($"paths[{i}] must be a non-empty string: the name of a stored image.", new { index = i }))
            .ToArray();
    }

    private static string? ReadFolder(JsonElement data)
    {
        if (!data.TryGetProperty("folder", out var value) || value.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : throw Invalid("The `folder` argument must be a string: a folder of the bucket, for example \"products/dresses\".");
    }

    // The original took parseInt(neighbours) || 10: a number or numeric string, anything else the default.
    private static int ReadNeighbors(JsonElement data)
    {
        if (!data.TryGetProperty("neighbours", out var value))
        {
            return DefaultNeighbors;
        }

        long? requested = value.ValueKind switch
        {
            JsonValueKind.Number when value.TryGetDouble(out var d) => (long)Math.Truncate(d),
            JsonValueKind.String when long.TryParse(value.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) => l,
            _ => null,
        };
        // Above the maximum is refused with the rest of the request's checks.
        return requested is null or <= 0 ? DefaultNeighbors : (int)Math.Min(requested.Value, int.MaxValue);
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
}

/// <summary>What one queryIndex call asks.</summary>
/// <param name="Images">Image files' bytes, each searched with its embedding; its answer's id is its position ("0", "1", ...).</param>
/// <param name="Paths">Stored object names, each searched with its stored vector and left out of its own answer.</param>
/// <param name="Neighbors">Neighbours per answer, 1 to <see cref="QueryIndex.MaxNeighbors"/>.</param>
/// <param name="Folder">Only images under this folder of the bucket (any depth) answer; null or empty: the whole bucket.</param>
public sealed record QueryIndexRequest(
    IReadOnlyList<ReadOnlyMemory<byte>> Images,
    IReadOnlyList<string> Paths,
    int Neighbors = QueryIndex.DefaultNeighbors,
    string? Folder = null);

/// <summary>The original's answer: {status: "ok", message: "Query successful", data: {nearestNeighbors: [...]}}.</summary>
public sealed record QueryIndexResponse(string Status, string Message, NearestNeighborsData Data);

/// <param name="NearestNeighbors">One entry per query image, then one per path, in the request's order.</param>
public sealed record NearestNeighborsData(IReadOnlyList<NearestNeighborsEntry> NearestNeighbors);

/// <param name="Id">The query image's position ("0", "1", ...) or the path.</param>
/// <param name="Neighbors">Nearest first.</param>
public sealed record NearestNeighborsEntry(string Id, IReadOnlyList<NeighborEntry> Neighbors);

/// <param name="Distance">As Vector Search reports it for the index's distance measure.</param>
public sealed record NeighborEntry(DatapointEntry Datapoint, double Distance);

/// <param name="DatapointId">The stored image's object name.</param>
public sealed record DatapointEntry(string DatapointId, CrowdingTagEntry CrowdingTag);

public sealed record CrowdingTagEntry([property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? CrowdingAttribute);
