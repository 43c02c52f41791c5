using System.Globalization;
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
/// queryIndex (callable; a signed-in Firebase user): data {query: [base64 image, ...], neighbours?: n}.
/// Embeds every query image and searches with each, answering the original's shape
/// {status: "ok", message: "Query successful", data: {nearestNeighbors: [one entry per image]}}.
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
        var neighbours = ReadNeighbours(request.Data);

        var index = await state.ReadIndexStateAsync(cancellationToken);
        if (index.Deployed is not { } deployed)
        {
            throw new FunctionException(FunctionErrorCode.FailedPrecondition,
                $"The index is not ready for queries yet: {index.Describe()}.", new { status = index.Status });
        }

        var embeddings = await embedder.EmbedAsync(images, cancellationToken);
        var queries = new NeighborQuery[embeddings.Count];
        for (var i = 0; i < embeddings.Count; i++)
        {
            queries[i] = embeddings[i].Vector is { } vector
                ? new NeighborQuery(i.ToString(CultureInfo.InvariantCulture), vector)
                : throw new FunctionException(FunctionErrorCode.InvalidArgument,
                    $"query[{i}] is not a usable image: {embeddings[i].RejectionReason}", new { index = i, reason = embeddings[i].RejectionReason });
        }

        IReadOnlyList<QueryNeighbors> results;
        try
        {
            results = await vectorIndex.FindNeighborsAsync(
                deployed.PublicEndpointDomainName, deployed.IndexEndpoint, options.DeployedIndexId, queries, neighbours, cancellationToken);
        }
        catch (ServiceException ex)
        {
            LogQueryFailed(logger, ex);
            throw new FunctionException(FunctionErrorCode.Internal, "Error querying the index", ex.Message);
        }

        var response = new QueryResponse("ok", "Query successful", new NearestNeighborsData(
            results.Select(r => new NearestNeighborsEntry(r.Id, r.Neighbors.Select(n =>
                new NeighborEntry(new DatapointEntry(n.DatapointId, new CrowdingTagEntry(n.CrowdingAttribute)), n.Distance)).ToArray())).ToArray()));
        return JsonSerializer.SerializeToElement(response, CoreJson.Options);
    }

    private ReadOnlyMemory<byte>[] ReadQueryImages(JsonElement data)
    {
        if (data.ValueKind != JsonValueKind.Object || !data.TryGetProperty("query", out var query)
            || query.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            throw Invalid("The function must be called with one argument \"query\": an array of base64-encoded images.");
        }

        if (query.ValueKind != JsonValueKind.Array || query.GetArrayLength() == 0)
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
