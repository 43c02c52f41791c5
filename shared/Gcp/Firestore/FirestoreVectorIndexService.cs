using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Gcp.Http;

namespace ReverseImageSearch.Gcp.Firestore;

/// <summary>
/// <see cref="IVectorIndexService"/> over Firestore vector search (INDEX_BACKEND=firestore). Each image's vector is a
/// document of <see cref="CoordinationDocuments.VectorCollection"/> whose id is the escaped object name, with the
/// object name in <c>path</c> and the vector in <c>embedding</c>; a view of it (MATCH_CROPS) is a document of its own,
/// id the escaped view id, with the image's name in <c>path</c> and the image's folders; writes are batched commits, queries are runQuery with
/// findNearest (exact K nearest neighbours over a flat index). The index is a schema object made through the Firestore
/// Admin API; there is no endpoint and nothing is deployed, so the endpoint calls are not supported and the index and
/// endpoint names the other calls take are ignored: the collection is the index.
/// Distances are reported as Vertex AI reports them for the same DISTANCE_MEASURE: EUCLIDEAN's distance is squared
/// for SQUARED_L2_DISTANCE; COSINE (1 - cosine similarity) and DOT_PRODUCT (the product, larger is nearer) already agree.
/// </summary>
public sealed class FirestoreVectorIndexService : IVectorIndexService
{
    /// <summary>The object name, which is the datapoint id the callable answers (a view's: its image's).</summary>
    public const string PathField = "path";

    public const string EmbeddingField = "embedding";

    /// <summary>Every folder the image is under (<see cref="IndexDatapoint.Folders"/>): a search under a folder prefilters on it.</summary>
    public const string FoldersField = "folders";

    // Written by findNearest into each result; never stored.
    private const string DistanceField = "distance";

    private readonly GoogleRestClient _documents;
    private readonly GoogleRestClient _admin;
    private readonly GcpAdapterOptions _options;
    private readonly string _documentsBase;
    private readonly string _adminBase;
    private readonly string _database;
    private readonly CoordinationDocuments _paths;
    private readonly string _measure;
    private readonly bool _squareDistance;
    private readonly bool _matchCrops;

    /// <param name="documents">Client of the documents API (the emulator's, when FIRESTORE_EMULATOR_HOST is set).</param>
    /// <param name="admin">Client of the Admin API (index creation); the emulator has none.</param>
    public FirestoreVectorIndexService(
        GoogleRestClient documents,
        GoogleRestClient admin,
        GcpEndpoints endpoints,
        GcpAdapterOptions options,
        ExtensionOptions extension,
        CoordinationDocuments paths)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(extension);
        _documents = documents;
        _admin = admin;
        _options = options;
        _paths = paths;
        _documentsBase = endpoints.EffectiveFirestoreBase.ToString().TrimEnd('/');
        _adminBase = endpoints.EffectiveFirestoreAdminBase.ToString().TrimEnd('/');
        _database = $"projects/{extension.ProjectId}/databases/(default)";
        _matchCrops = extension.MatchCrops;
        (_measure, _squareDistance) = extension.DistanceMeasure switch
        {
            DistanceMeasure.SquaredL2 => ("EUCLIDEAN", true),
            DistanceMeasure.Cosine => ("COSINE", false),
            DistanceMeasure.DotProduct => ("DOT_PRODUCT", false),
            _ => throw new NotSupportedException($"Firestore vector search has no {extension.DistanceMeasure.ToParameterValue()}."),
        };
    }

    private string CollectionGroup => $"{_adminBase}/{_database}/collectionGroups/{_paths.VectorCollectionId}/indexes";

    /// <summary>
    /// Creates the vector indexes of the collection (flat, the given dimension): the plain one every search uses, and
    /// the one with <see cref="FoldersField"/> as a prefix that a search under a folder needs. The answer is the plain
    /// one's creation; when it exists already (deploy.sh makes both at install) the answer names it instead: done when
    /// READY, else pollable by its name. A folder search before its index is READY fails with Firestore's FAILED_PRECONDITION.
    /// </summary>
    public async Task<LongRunningOperation> CreateIndexAsync(IndexDefinition definition, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(definition);
        var plain = await CreateVectorIndexAsync(definition.Dimensions, withFolders: false, cancellationToken);
        await CreateVectorIndexAsync(definition.Dimensions, withFolders: true, cancellationToken);
        return plain;
    }

    private async Task<LongRunningOperation> CreateVectorIndexAsync(int dimensions, bool withFolders, CancellationToken cancellationToken)
    {
        var fields = new JsonArray();
        if (withFolders)
        {
            fields.Add(new JsonObject { ["fieldPath"] = FoldersField, ["arrayConfig"] = "CONTAINS" });
        }

        fields.Add(new JsonObject
        {
            ["fieldPath"] = EmbeddingField,
            ["vectorConfig"] = new JsonObject { ["dimension"] = dimensions, ["flat"] = new JsonObject() },
        });
        var body = new JsonObject { ["queryScope"] = "COLLECTION", ["fields"] = fields };
        try
        {
            using var operation = await _admin.SendJsonAsync<JsonDocument>(HttpMethod.Post, new Uri(CollectionGroup), body, cancellationToken);
            return ToOperation(operation.RootElement);
        }
        catch (ServiceException e) when (e.IsAlreadyExists)
        {
            return await FindIndexAsync(dimensions, withFolders, cancellationToken)
                ?? throw new InvalidOperationException($"Firestore reports the vector index of {_paths.VectorCollectionId} exists, but no index of dimension {dimensions} is listed.", e);
        }
    }

    /// <summary>An Admin API operation (…/operations/…), or an index by its name: done once READY.</summary>
    public async Task<LongRunningOperation> GetOperationAsync(string operationName, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(operationName);
        using var answer = await _admin.SendJsonAsync<JsonDocument>(HttpMethod.Get, new Uri($"{_adminBase}/{operationName}"), null, cancellationToken);
        return operationName.Contains("/operations/", StringComparison.Ordinal) ? ToOperation(answer.RootElement) : IndexAsOperation(answer.RootElement);
    }

    public async Task UpsertDatapointsAsync(string index, IReadOnlyList<IndexDatapoint> datapoints, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(datapoints);
        await CommitInBatchesAsync(datapoints.Select(d => (JsonNode)new JsonObject
        {
            ["update"] = new JsonObject
            {
                ["name"] = DocumentName(d.DatapointId),
                ["fields"] = new JsonObject
                {
                    [PathField] = new JsonObject { ["stringValue"] = d.Image },
                    [EmbeddingField] = FirestoreValues.EncodeVector(d.FeatureVector),
                    [FoldersField] = FirestoreValues.Encode(d.Folders),
                },
            },
        }), cancellationToken);
    }

    /// <summary>Deletes the vector documents; a missing one is no error (Firestore deletes are idempotent).</summary>
    public Task RemoveDatapointsAsync(string index, IReadOnlyList<string> datapointIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(datapointIds);
        return CommitInBatchesAsync(datapointIds.Select(id => (JsonNode)new JsonObject { ["delete"] = DocumentName(id) }), cancellationToken);
    }

    /// <summary>
    /// One runQuery with findNearest per query vector, run together; at most 1000 neighbours each. With MATCH_CROPS an
    /// image has up to four documents (its own and its views'), so findNearest is asked for four times as many (at most
    /// 1000) and each image keeps its nearest (<see cref="ImageViews.BestPerImage"/>).
    /// </summary>
    public async Task<IReadOnlyList<QueryNeighbors>> FindNeighborsAsync(
        string publicEndpointDomainName,
        string indexEndpoint,
        string deployedIndexId,
        IReadOnlyList<NeighborQuery> queries,
        int neighborCount,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        ArgumentOutOfRangeException.ThrowIfLessThan(neighborCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(neighborCount, 1000);
        var answers = await Task.WhenAll(queries.Select(q => FindNearestAsync(q, neighborCount, cancellationToken)));
        return answers;
    }

    /// <summary>One batchGet of the vector documents; a missing document is left out.</summary>
    public async Task<IReadOnlyList<IndexDatapoint>> ReadDatapointsAsync(
        string publicEndpointDomainName,
        string indexEndpoint,
        string deployedIndexId,
        IReadOnlyList<string> datapointIds,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(datapointIds);
        if (datapointIds.Count == 0)
        {
            return [];
        }

        var body = new JsonObject
        {
            ["documents"] = new JsonArray(datapointIds.Distinct(StringComparer.Ordinal).Select(id => (JsonNode)DocumentName(id)).ToArray()),
            ["mask"] = new JsonObject { ["fieldPaths"] = new JsonArray(PathField, EmbeddingField, FoldersField) },
        };
        using var answer = await _documents.SendJsonAsync<JsonDocument>(
            HttpMethod.Post, new Uri($"{_documentsBase}/{_database}/documents:batchGet"), body, cancellationToken);
        var found = new List<IndexDatapoint>(datapointIds.Count);
        foreach (var item in answer.RootElement.EnumerateArray())
        {
            if (item.TryGetProperty("found", out var document) && document.TryGetProperty("fields", out var fields)
                && fields.TryGetProperty(PathField, out var path) && FirestoreValues.Decode(path) is string id
                && fields.TryGetProperty(EmbeddingField, out var embedding) && FirestoreValues.DecodeVector(embedding) is { Length: > 0 } vector)
            {
                var folders = fields.TryGetProperty(FoldersField, out var f) && FirestoreValues.Decode(f) is object?[] list ? list.OfType<string>().ToArray() : [];
                found.Add(new IndexDatapoint(id, vector, folders));
            }
        }

        return found;
    }

    public Task<LongRunningOperation> CreateIndexEndpointAsync(string displayName, CancellationToken cancellationToken = default) =>
        throw NoEndpoint();

    public Task<LongRunningOperation> DeployIndexAsync(string indexEndpoint, DeployedIndexSpec deployedIndex, CancellationToken cancellationToken = default) =>
        throw NoEndpoint();

    public Task<IndexEndpointInfo> GetIndexEndpointAsync(string indexEndpoint, CancellationToken cancellationToken = default) =>
        throw NoEndpoint();

    private async Task<QueryNeighbors> FindNearestAsync(NeighborQuery query, int neighborCount, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["structuredQuery"] = new JsonObject
            {
                // Only the name and the distance come back, not 1280 numbers per neighbour.
                ["select"] = new JsonObject
                {
                    ["fields"] = new JsonArray(new JsonObject { ["fieldPath"] = PathField }, new JsonObject { ["fieldPath"] = DistanceField }),
                },
                ["from"] = new JsonArray(new JsonObject { ["collectionId"] = _paths.VectorCollectionId }),
                ["findNearest"] = new JsonObject
                {
                    ["vectorField"] = new JsonObject { ["fieldPath"] = EmbeddingField },
                    ["queryVector"] = FirestoreValues.EncodeVector(query.FeatureVector),
                    ["distanceMeasure"] = _measure,
                    ["limit"] = _matchCrops ? Math.Min(1000, neighborCount * (ImageViews.Names.Count + 1)) : neighborCount,
                    ["distanceResultField"] = DistanceField,
                },
            },
        };
        if (query.Folder is { } folder)
        {
            // A prefilter: findNearest ranks only the documents under the folder, so the limit is still met.
            body["structuredQuery"]!["where"] = new JsonObject
            {
                ["fieldFilter"] = new JsonObject
                {
                    ["field"] = new JsonObject { ["fieldPath"] = FoldersField },
                    ["op"] = "ARRAY_CONTAINS",
                    ["value"] = new JsonObject { ["stringValue"] = folder },
                },
            };
        }

        var parent = _paths.VectorCollection[.._paths.VectorCollection.LastIndexOf('/')];
        using var answer = await _documents.SendJsonAsync<JsonDocument>(
            HttpMethod.Post, new Uri($"{_documentsBase}/{_database}/documents/{parent}:runQuery"), body, cancellationToken);
        var neighbors = new List<Neighbor>(neighborCount);
        foreach (var item in answer.RootElement.EnumerateArray())
        {
            if (!item.TryGetProperty("document", out var document) || !document.TryGetProperty("fields", out var fields))
            {
                continue;
            }

            var id = fields.TryGetProperty(PathField, out var path) ? FirestoreValues.Decode(path) as string : null;
            var distance = fields.TryGetProperty(DistanceField, out var d) ? Convert.ToDouble(FirestoreValues.Decode(d), CultureInfo.InvariantCulture) : 0;
            neighbors.Add(new Neighbor(id ?? document.GetProperty("name").GetString()!, CrowdingAttribute: null, _squareDistance ? distance * distance : distance));
        }

        return new QueryNeighbors(query.DatapointId, ImageViews.BestPerImage(neighbors, neighborCount));
    }

    private async Task CommitInBatchesAsync(IEnumerable<JsonNode> writes, CancellationToken cancellationToken)
    {
        var url = new Uri($"{_documentsBase}/{_database}/documents:commit");
        foreach (var batch in writes.Chunk(Math.Clamp(_options.FirestoreWritesPerCommit, 1, 500)))
        {
            await _documents.SendJsonAsync(HttpMethod.Post, url, new JsonObject { ["writes"] = new JsonArray(batch) }, cancellationToken);
        }
    }

    private async Task<LongRunningOperation?> FindIndexAsync(int dimension, bool withFolders, CancellationToken cancellationToken)
    {
        using var list = await _admin.SendJsonAsync<JsonDocument>(HttpMethod.Get, new Uri(CollectionGroup), null, cancellationToken);
        if (!list.RootElement.TryGetProperty("indexes", out var indexes))
        {
            return null;
        }

        foreach (var index in indexes.EnumerateArray())
        {
            var fields = index.TryGetProperty("fields", out var f) ? f.EnumerateArray() : default;
            if (fields.Any(field => field.TryGetProperty("fieldPath", out var p) && p.GetString() == FoldersField) == withFolders
                && fields.Any(field => field.TryGetProperty("fieldPath", out var p) && p.GetString() == EmbeddingField
                && field.TryGetProperty("vectorConfig", out var v) && v.TryGetProperty("dimension", out var n) && n.GetInt32() == dimension))
            {
                return IndexAsOperation(index);
            }
        }

        return null;
    }

    /// <summary>An index read as an operation: done when READY, failed when NEEDS_REPAIR, else still creating.</summary>
    private static LongRunningOperation IndexAsOperation(JsonElement index)
    {
        var name = index.GetProperty("name").GetString()!;
        var state = index.TryGetProperty("state", out var s) ? s.GetString() : null;
        return state switch
        {
            "READY" => new LongRunningOperation(name, Done: true, Response: index.Clone()),
            "NEEDS_REPAIR" => new LongRunningOperation(name, Done: true, new OperationError(9, $"Index {name} needs repair.")),
            _ => new LongRunningOperation(name, Done: false),
        };
    }

    private static LongRunningOperation ToOperation(JsonElement operation)
    {
        var error = operation.TryGetProperty("error", out var e)
            ? new OperationError(e.TryGetProperty("code", out var c) ? c.GetInt32() : 0, e.TryGetProperty("message", out var m) ? m.GetString() ?? "" : "")
            : null;
        return new LongRunningOperation(
            operation.GetProperty("name").GetString()!,
            operation.TryGetProperty("done", out var done) && done.GetBoolean(),
            error,
            operation.TryGetProperty("response", out var response) && response.ValueKind == JsonValueKind.Object ? response.Clone() : null);
    }

    private string DocumentName(string objectName) =>
        $"{_database}/documents/{_paths.VectorCollection}/{CoordinationDocuments.EscapeDocumentId(objectName)}";

    private static NotSupportedException NoEndpoint() =>
        new("Firestore vector search has no index endpoint: nothing is deployed (INDEX_BACKEND=firestore).");
}
