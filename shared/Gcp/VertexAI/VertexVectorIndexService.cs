using System.Text.Json;
using System.Text.Json.Nodes;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Gcp.Http;

namespace ReverseImageSearch.Gcp.VertexAI;

/// <summary>
/// <see cref="IVectorIndexService"/> over Vertex AI Vector Search (aiplatform v1, regional host). Every datapoint is
/// written with its image as crowding attribute (<see cref="IndexDatapoint.Image"/>); with
/// MATCH_CROPS a query asks for one neighbour per crowding attribute, so an image and its views answer once.
/// </summary>
public sealed class VertexVectorIndexService(GoogleRestClient client, GcpEndpoints endpoints, GcpAdapterOptions options, ExtensionOptions extension)
    : IVectorIndexService
{
    public const string MetadataSchemaUri = "gs://google-cloud-aiplatform/schema/matchingengine/metadata/nearest_neighbor_search_1.0.0.yaml";

    private readonly string _apiBase = endpoints.VertexBaseFor(extension.Location).ToString().TrimEnd('/');

    private string LocationPath => $"projects/{extension.ProjectId}/locations/{extension.Location}";

    public async Task<LongRunningOperation> CreateIndexAsync(IndexDefinition definition, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(definition);
        // Creates are sent once (GcpHttpPipeline.SendOnce) and looked up first: a send whose answer was lost (a 5xx
        // or timeout after Vertex AI accepted it, an instance that died before recording the operation) made an
        // index already, and a second one would bill unseen. The display name is the extension instance's own.
        if (await FindByDisplayNameAsync("indexes", definition.DisplayName, cancellationToken) is { } existing)
        {
            return await CreationOperationAsync(existing, definition.DisplayName, cancellationToken);
        }

        var index = new JsonObject
        {
            ["displayName"] = definition.DisplayName,
            ["indexUpdateMethod"] = "STREAM_UPDATE",
            ["metadataSchemaUri"] = MetadataSchemaUri,
            ["metadata"] = new JsonObject
            {
                ["contentsDeltaUri"] = definition.ContentsDeltaUri,
                ["isCompleteOverwrite"] = false,
                ["config"] = new JsonObject
                {
                    ["dimensions"] = definition.Dimensions,
                    ["approximateNeighborsCount"] = definition.ApproximateNeighborsCount,
                    ["distanceMeasureType"] = WireName(definition.DistanceMeasure),
                    ["featureNormType"] = definition.NormalizeToUnitLength ? "UNIT_L2_NORM" : "NONE",
                    ["shardSize"] = WireName(definition.ShardSize),
                    ["algorithmConfig"] = new JsonObject { [AlgorithmConfigName(definition.Algorithm)] = new JsonObject() },
                },
            },
        };
        return await OperationCallAsync(HttpMethod.Post, $"{LocationPath}/indexes", index, cancellationToken, sendOnce: true);
    }

    private static string WireName(DistanceMeasure measure) => measure switch
    {
        DistanceMeasure.SquaredL2 => "SQUARED_L2_DISTANCE",
        DistanceMeasure.L1 => "L1_DISTANCE",
        DistanceMeasure.Cosine => "COSINE_DISTANCE",
        DistanceMeasure.DotProduct => "DOT_PRODUCT_DISTANCE",
        _ => throw new ArgumentOutOfRangeException(nameof(measure), measure, null),
    };

    private static string WireName(IndexShardSize size) => size switch
    {
        IndexShardSize.Small => "SHARD_SIZE_SMALL",
        IndexShardSize.Medium => "SHARD_SIZE_MEDIUM",
        IndexShardSize.Large => "SHARD_SIZE_LARGE",
        _ => throw new ArgumentOutOfRangeException(nameof(size), size, null),
    };

    // The one member of config.algorithmConfig; tree-AH's tuning fields are left to Vertex AI's defaults, as the original did.
    private static string AlgorithmConfigName(IndexAlgorithm algorithm) => algorithm switch
    {
        IndexAlgorithm.TreeAh => "treeAhConfig",
        IndexAlgorithm.BruteForce => "bruteForceConfig",
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, null),
    };

    /// <summary>Full names of this location's resources (indexes or indexEndpoints) with <paramref name="displayName"/>, oldest listing first.</summary>
    private async Task<IReadOnlyList<string>> ListByDisplayNameAsync(string collection, string displayName, CancellationToken cancellationToken = default)
    {
        var names = new List<string>();
        string? pageToken = null;
        do
        {
            var filter = Uri.EscapeDataString($"display_name=\"{displayName}\"");
            var page = pageToken is null ? "" : "&pageToken=" + Uri.EscapeDataString(pageToken);
            var url = new Uri($"{_apiBase}/{LocationPath}/{collection}?filter={filter}{page}");
            using var answer = await client.SendJsonAsync<JsonDocument>(HttpMethod.Get, url, null, cancellationToken);
            var root = answer.RootElement;
            if (root.TryGetProperty(collection, out var items) && items.ValueKind == JsonValueKind.Array)
            {
                names.AddRange(items.EnumerateArray()
                    .Where(i => i.TryGetProperty("displayName", out var d) && d.GetString() == displayName)
                    .Select(i => i.TryGetProperty("name", out var n) ? n.GetString() : null)
                    .OfType<string>());
            }

            pageToken = root.TryGetProperty("nextPageToken", out var next) && next.GetString() is { Length: > 0 } t ? t : null;
        }
        while (pageToken is not null);

        return names;
    }

    private async Task<string?> FindByDisplayNameAsync(string collection, string displayName, CancellationToken cancellationToken) =>
        (await ListByDisplayNameAsync(collection, displayName, cancellationToken)).FirstOrDefault();

    // The CreateIndex operation of an index that exists already, so the caller records and follows it as its own.
    private async Task<LongRunningOperation> CreationOperationAsync(string index, string displayName, CancellationToken cancellationToken)
    {
        using var answer = await client.SendJsonAsync<JsonDocument>(HttpMethod.Get, Url(Resource(index) + "/operations"), null, cancellationToken);
        if (answer.RootElement.TryGetProperty("operations", out var operations) && operations.ValueKind == JsonValueKind.Array)
        {
            foreach (var operation in operations.EnumerateArray())
            {
                if (operation.TryGetProperty("metadata", out var metadata)
                    && metadata.TryGetProperty("@type", out var type)
                    && type.GetString()?.EndsWith(".CreateIndexOperationMetadata", StringComparison.Ordinal) == true)
                {
                    return ToOperation(operation.Deserialize<OperationResource>(GcpJson.Options)!);
                }
            }
        }

        throw new ServiceException(409, "ALREADY_EXISTS",
            $"An index named '{displayName}' already exists ({index}) and its creation is no longer listed: it is left from an earlier "
            + "installation. Run ./deploy.sh uninstall, or delete it with gcloud ai indexes delete, then reinstall.");
    }

    public Task<LongRunningOperation> GetOperationAsync(string operationName, CancellationToken cancellationToken = default) =>
        OperationCallAsync(HttpMethod.Get, Resource(operationName), null, cancellationToken);

    public async Task<LongRunningOperation> CreateIndexEndpointAsync(string displayName, CancellationToken cancellationToken = default)
    {
        // Sent once and looked up first, as CreateIndexAsync: an endpoint made by a send whose answer was lost is reused.
        if (await FindByDisplayNameAsync("indexEndpoints", displayName, cancellationToken) is { } existing)
        {
            using var resource = JsonDocument.Parse(new JsonObject { ["name"] = existing }.ToJsonString());
            return new LongRunningOperation(existing, Done: true, Response: resource.RootElement.Clone());
        }

        return await OperationCallAsync(
            HttpMethod.Post,
            $"{LocationPath}/indexEndpoints",
            new JsonObject { ["displayName"] = displayName, ["publicEndpointEnabled"] = true },
            cancellationToken,
            sendOnce: true);
    }

    public Task<LongRunningOperation> DeployIndexAsync(string indexEndpoint, DeployedIndexSpec deployedIndex, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(deployedIndex);
        var machineSpec = new JsonObject { ["machineType"] = deployedIndex.MachineType };
        if (!string.IsNullOrEmpty(deployedIndex.AcceleratorType) && deployedIndex.AcceleratorType != "ACCELERATOR_TYPE_UNSPECIFIED")
        {
            machineSpec["acceleratorType"] = deployedIndex.AcceleratorType;
            machineSpec["acceleratorCount"] = deployedIndex.AcceleratorCount;
        }

        var body = new JsonObject
        {
            ["deployedIndex"] = new JsonObject
            {
                ["id"] = deployedIndex.Id,
                ["index"] = deployedIndex.Index,
                ["dedicatedResources"] = new JsonObject
                {
                    ["machineSpec"] = machineSpec,
                    ["minReplicaCount"] = deployedIndex.MinReplicaCount,
                    ["maxReplicaCount"] = deployedIndex.MaxReplicaCount,
                },
            },
        };
        return OperationCallAsync(HttpMethod.Post, Resource(indexEndpoint) + ":deployIndex", body, cancellationToken);
    }

    public async Task<IndexEndpointInfo> GetIndexEndpointAsync(string indexEndpoint, CancellationToken cancellationToken = default)
    {
        var answer = await client.SendJsonAsync<IndexEndpointResource>(HttpMethod.Get, Url(Resource(indexEndpoint)), null, cancellationToken);
        return new IndexEndpointInfo(
            answer.Name ?? indexEndpoint,
            string.IsNullOrEmpty(answer.PublicEndpointDomainName) ? null : answer.PublicEndpointDomainName,
            (answer.DeployedIndexes ?? []).Select(d => d.Id).OfType<string>().ToArray());
    }

    public async Task UpsertDatapointsAsync(string index, IReadOnlyList<IndexDatapoint> datapoints, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(datapoints);
        var url = Url(Resource(index) + ":upsertDatapoints");
        foreach (var batch in datapoints.Chunk(Math.Max(1, options.UpsertBatchSize)))
        {
            var body = new UpsertRequest(batch.Select(d => new DatapointBody(
                d.DatapointId, d.FeatureVector, FolderRestricts(d.Folders), new CrowdingTagResource(d.Image))).ToArray());
            await client.SendJsonAsync(HttpMethod.Post, url, body, cancellationToken);
        }
    }

    public async Task RemoveDatapointsAsync(string index, IReadOnlyList<string> datapointIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(datapointIds);
        var url = Url(Resource(index) + ":removeDatapoints");
        foreach (var batch in datapointIds.Chunk(Math.Max(1, options.UpsertBatchSize)))
        {
            await client.SendJsonAsync(HttpMethod.Post, url, new RemoveRequest(batch), cancellationToken);
        }
    }

    public async Task<IReadOnlyList<QueryNeighbors>> FindNeighborsAsync(
        string publicEndpointDomainName,
        string indexEndpoint,
        string deployedIndexId,
        IReadOnlyList<NeighborQuery> queries,
        int neighborCount,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        // MATCH_CROPS: an image and its views share a crowding attribute (the image), so one of them answers per image.
        var perImage = extension.MatchCrops ? 1 : (int?)null;
        var body = new FindNeighborsRequest(
            deployedIndexId,
            queries.Select(q => new FindNeighborsQuery(
                new DatapointBody(q.DatapointId, q.FeatureVector, q.Folder is { } folder ? FolderRestricts([folder]) : null), neighborCount, perImage)).ToArray());
        var url = QueryUrl(publicEndpointDomainName, indexEndpoint, "findNeighbors");
        var answer = await client.SendJsonAsync<FindNeighborsResponse>(HttpMethod.Post, url, body, cancellationToken);
        // A view answers under its image's id; should crowding let an image through twice, its nearest is kept.
        return (answer.NearestNeighbors ?? [])
            .Select(n => new QueryNeighbors(
                n.Id ?? "",
                ImageViews.BestPerImage(
                    (n.Neighbors ?? []).Select(x => new Neighbor(x.Datapoint?.DatapointId ?? "", x.Datapoint?.CrowdingTag?.CrowdingAttribute, x.Distance ?? 0)),
                    neighborCount)))
            .ToArray();
    }

    /// <summary>
    /// readIndexDatapoints on the deployed index's public endpoint. An id the index does not hold is left out: Vertex AI
    /// may leave it out of its answer, or answer the whole call NOT_FOUND, in which case each id is read alone and the
    /// ones still NOT_FOUND are left out.
    /// </summary>
    public async Task<IReadOnlyList<IndexDatapoint>> ReadDatapointsAsync(
        string publicEndpointDomainName,
        string indexEndpoint,
        string deployedIndexId,
        IReadOnlyList<string> datapointIds,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(datapointIds);
        var url = QueryUrl(publicEndpointDomainName, indexEndpoint, "readIndexDatapoints");
        try
        {
            return await ReadAsync(url, deployedIndexId, datapointIds, cancellationToken);
        }
        catch (ServiceException e) when (e.IsNotFound && datapointIds.Count > 1)
        {
            var found = new List<IndexDatapoint>();
            foreach (var id in datapointIds.Distinct(StringComparer.Ordinal))
            {
                try
                {
                    found.AddRange(await ReadAsync(url, deployedIndexId, [id], cancellationToken));
                }
                catch (ServiceException one) when (one.IsNotFound)
                {
                }
            }

            return found;
        }
        catch (ServiceException e) when (e.IsNotFound)
        {
            return [];
        }
    }

    private async Task<IReadOnlyList<IndexDatapoint>> ReadAsync(Uri url, string deployedIndexId, IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        var answer = await client.SendJsonAsync<ReadDatapointsResponse>(HttpMethod.Post, url, new ReadDatapointsRequest(deployedIndexId, ids), cancellationToken);
        var wanted = ids.ToHashSet(StringComparer.Ordinal);
        return (answer.Datapoints ?? [])
            .Where(d => d.DatapointId is { } id && wanted.Contains(id) && d.FeatureVector is { Length: > 0 })
            .Select(d => new IndexDatapoint(
                d.DatapointId!,
                d.FeatureVector!,
                (d.Restricts ?? []).Where(r => r.Namespace == ImageFolders.TokenNamespace).SelectMany(r => r.AllowList ?? []).ToArray()))
            .ToArray();
    }

    /// <summary>A query call on the deployed index's public endpoint, whose domain is checked before any token goes there.</summary>
    private Uri QueryUrl(string publicEndpointDomainName, string indexEndpoint, string method)
    {
        ArgumentException.ThrowIfNullOrEmpty(publicEndpointDomainName);
        if (!GcpEndpoints.IsVectorSearchDomain(publicEndpointDomainName))
        {
            // The domain is read from the metadata document: whoever can write it must not receive our token.
            throw new ServiceException(400, "FAILED_PRECONDITION",
                $"The metadata document names the query host '{publicEndpointDomainName}', which is not a Vector Search endpoint domain "
                + $"(*{GcpEndpoints.VectorSearchDomainSuffix}); no request was sent. Re-deploy the index or correct publicEndpointDomainName.");
        }

        return new Uri($"{endpoints.PublicEndpointBaseFor(publicEndpointDomainName).ToString().TrimEnd('/')}/{Resource(indexEndpoint)}:{method}");
    }

    /// <summary>The folder tokens as a restrict of the folder namespace; none at all for an object at the top of the bucket.</summary>
    private static RestrictBody[]? FolderRestricts(IReadOnlyList<string> folders) =>
        folders.Count == 0 ? null : [new RestrictBody(ImageFolders.TokenNamespace, folders.ToArray())];

    private async Task<LongRunningOperation> OperationCallAsync(
        HttpMethod method, string resourcePath, JsonObject? body, CancellationToken cancellationToken, bool sendOnce = false)
    {
        var op = sendOnce
            ? await client.SendJsonOnceAsync<OperationResource>(method, Url(resourcePath), body, cancellationToken)
            : await client.SendJsonAsync<OperationResource>(method, Url(resourcePath), body, cancellationToken);
        return ToOperation(op);
    }

    private static LongRunningOperation ToOperation(OperationResource op) =>
        new(
            op.Name ?? "",
            op.Done ?? false,
            op.Error is { } e ? new OperationError(e.Code ?? 0, e.Message ?? "") : null,
            op.Response is { ValueKind: JsonValueKind.Object } r ? r.Clone() : null);

    private Uri Url(string resourcePath) => new($"{_apiBase}/{resourcePath}");

    /// <summary>A full resource name (projects/...); a leading '/' or version prefix is not accepted.</summary>
    private static string Resource(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return name.StartsWith("projects/", StringComparison.Ordinal)
            ? name
            : throw new ArgumentException($"'{name}' is not a resource name (projects/...).", nameof(name));
    }

    private sealed record OperationResource(string? Name, bool? Done, StatusResource? Error, JsonElement? Response);

    private sealed record StatusResource(int? Code, string? Message);

    private sealed record IndexEndpointResource(string? Name, string? PublicEndpointDomainName, List<DeployedIndexResource>? DeployedIndexes);

    private sealed record DeployedIndexResource(string? Id);

    private sealed record DatapointBody(string DatapointId, float[] FeatureVector, RestrictBody[]? Restricts = null, CrowdingTagResource? CrowdingTag = null);

    private sealed record RestrictBody(string Namespace, string[] AllowList);

    private sealed record ReadDatapointsRequest(string DeployedIndexId, IReadOnlyList<string> Ids);

    private sealed record ReadDatapointsResponse(List<ReadDatapoint>? Datapoints);

    private sealed record ReadDatapoint(string? DatapointId, float[]? FeatureVector, List<ReadRestrict>? Restricts);

    private sealed record ReadRestrict(string? Namespace, List<string>? AllowList);

    private sealed record UpsertRequest(DatapointBody[] Datapoints);

    private sealed record RemoveRequest(string[] DatapointIds);

    private sealed record FindNeighborsQuery(DatapointBody Datapoint, int NeighborCount, int? PerCrowdingAttributeNeighborCount);

    private sealed record FindNeighborsRequest(string DeployedIndexId, FindNeighborsQuery[] Queries);

    private sealed record FindNeighborsResponse(List<NearestNeighborsResource>? NearestNeighbors);

    private sealed record NearestNeighborsResource(string? Id, List<NeighborResource>? Neighbors);

    private sealed record NeighborResource(NeighborDatapoint? Datapoint, double? Distance);

    private sealed record NeighborDatapoint(string? DatapointId, CrowdingTagResource? CrowdingTag);

    private sealed record CrowdingTagResource(string? CrowdingAttribute);
}
