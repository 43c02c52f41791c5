using System.Text.Json;
using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Core.Ports;

/// <summary>
/// A managed vector index with Vertex AI Vector Search's lifecycle: an index built from datapoint files,
/// an endpoint it is deployed to, streaming upserts and removals, and nearest-neighbour queries.
/// Long-running calls answer an operation; completion of CreateIndex and DeployIndex is also announced
/// as an audit-log event (<see cref="Triggers.AuditLogEvent"/>), which drives onIndexCreated and onIndexDeployed.
/// </summary>
public interface IVectorIndexService
{
    Task<LongRunningOperation> CreateIndexAsync(IndexDefinition definition, CancellationToken cancellationToken = default);

    Task<LongRunningOperation> GetOperationAsync(string operationName, CancellationToken cancellationToken = default);

    Task<LongRunningOperation> CreateIndexEndpointAsync(string displayName, CancellationToken cancellationToken = default);

    Task<LongRunningOperation> DeployIndexAsync(string indexEndpoint, DeployedIndexSpec deployedIndex, CancellationToken cancellationToken = default);

    Task<IndexEndpointInfo> GetIndexEndpointAsync(string indexEndpoint, CancellationToken cancellationToken = default);

    Task UpsertDatapointsAsync(string index, IReadOnlyList<IndexDatapoint> datapoints, CancellationToken cancellationToken = default);

    Task RemoveDatapointsAsync(string index, IReadOnlyList<string> datapointIds, CancellationToken cancellationToken = default);

    /// <summary>
    /// The stored datapoints of <paramref name="datapointIds"/> that the deployed index holds, vectors as stored
    /// (normalised where the index normalises); an id it does not hold is left out, never an error. The ids asked for
    /// are images' (the callable's <c>paths</c>).
    /// </summary>
    Task<IReadOnlyList<IndexDatapoint>> ReadDatapointsAsync(
        string publicEndpointDomainName,
        string indexEndpoint,
        string deployedIndexId,
        IReadOnlyList<string> datapointIds,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// One result per query, in query order, neighbours nearest first. A view never answers under its own id: an image
    /// answers once, under its own id, with the best distance among its datapoints (its own and its views',
    /// <see cref="Coordination.ImageViews"/>), so <paramref name="neighborCount"/> counts images. A query with a
    /// <see cref="NeighborQuery.Folder"/> is answered from the datapoints written with that folder among their
    /// <see cref="IndexDatapoint.Folders"/> only (views carry their image's), still <paramref name="neighborCount"/>
    /// images when that many are there.
    /// </summary>
    Task<IReadOnlyList<QueryNeighbors>> FindNeighborsAsync(
        string publicEndpointDomainName,
        string indexEndpoint,
        string deployedIndexId,
        IReadOnlyList<NeighborQuery> queries,
        int neighborCount,
        CancellationToken cancellationToken = default);
}

/// <summary>What an index is built as; each adapter writes it in its API's own terms.</summary>
/// <param name="ContentsDeltaUri">gs:// folder of JSON-lines datapoint files the index is built from.</param>
/// <param name="NormalizeToUnitLength">Vectors and queries are scaled to length 1 before they are compared.</param>
public sealed record IndexDefinition(
    string DisplayName,
    string ContentsDeltaUri,
    int Dimensions,
    int ApproximateNeighborsCount,
    DistanceMeasure DistanceMeasure,
    bool NormalizeToUnitLength,
    IndexShardSize ShardSize,
    IndexAlgorithm Algorithm);

/// <param name="Response">The finished operation's resource (for example the created Index), when done.</param>
public sealed record LongRunningOperation(string Name, bool Done, OperationError? Error = null, JsonElement? Response = null)
{
    /// <summary>The "name" of the resource the finished operation produced.</summary>
    public string? ResponseResourceName =>
        Response is { ValueKind: JsonValueKind.Object } r && r.TryGetProperty("name", out var n) ? n.GetString() : null;
}

public sealed record OperationError(int Code, string Message);

public sealed record DeployedIndexSpec(
    string Id,
    string Index,
    string MachineType,
    string AcceleratorType,
    int AcceleratorCount,
    int MinReplicaCount,
    int MaxReplicaCount);

public sealed record IndexEndpointInfo(string Name, string? PublicEndpointDomainName, IReadOnlyList<string> DeployedIndexIds);

/// <param name="Folders">
/// The folders the datapoint is under, every ancestor (<see cref="Coordination.ImageFolders.Of"/>): what a query's
/// <see cref="NeighborQuery.Folder"/> is matched against. Empty for an object at the top of the bucket.
/// </param>
/// <param name="CrowdingTag">
/// The image the datapoint belongs to (Vertex AI's crowding attribute): datapoints with the same tag, an image and its
/// views (<see cref="Coordination.ImageViews"/>), answer a query once. Null: the datapoint is its own image.
/// </param>
public sealed record IndexDatapoint(string DatapointId, float[] FeatureVector, IReadOnlyList<string>? Folders = null, string? CrowdingTag = null)
{
    public IReadOnlyList<string> Folders { get; init; } = Folders ?? [];

    /// <summary>The image the datapoint belongs to: its crowding tag, else its own id (an image's datapoint).</summary>
    public string Image => CrowdingTag ?? DatapointId;

    /// <summary>The datapoint of a stored image: its object name as the id, written with every folder it is under.</summary>
    public static IndexDatapoint ForImage(string objectName, float[] vector) => new(objectName, vector, Coordination.ImageFolders.Of(objectName));

    /// <summary>A view of a stored image: the view's id, the image's folders, the image as crowding tag.</summary>
    public static IndexDatapoint ForView(string objectName, ImageView view)
    {
        ArgumentNullException.ThrowIfNull(view);
        return new(Coordination.ImageViews.Id(objectName, view.Name), view.Vector, Coordination.ImageFolders.Of(objectName), objectName);
    }
}

/// <param name="Folder">Only datapoints under this folder (any depth) answer; null: the whole index.</param>
public sealed record NeighborQuery(string DatapointId, float[] FeatureVector, string? Folder = null);

/// <param name="Distance">As Vector Search reports it for the index's distance measure.</param>
public sealed record Neighbor(string DatapointId, string? CrowdingAttribute, double Distance);

/// <param name="Id">The query's datapoint id.</param>
public sealed record QueryNeighbors(string Id, IReadOnlyList<Neighbor> Neighbors);

/// <summary>An API answered with an error; carries its status so handlers and logs can tell what happened.</summary>
public class ServiceException(int httpStatus, string status, string message, Exception? inner = null)
    : Exception($"{status} ({httpStatus}): {message}", inner)
{
    public int HttpStatus { get; } = httpStatus;

    /// <summary>Canonical status name, for example NOT_FOUND or ALREADY_EXISTS.</summary>
    public string Status { get; } = status;

    public string ServiceMessage { get; } = message;

    public bool IsNotFound => HttpStatus == 404;

    public bool IsAlreadyExists => HttpStatus == 409 && Status != "ABORTED";
}
