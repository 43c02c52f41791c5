using System.Globalization;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Local.VectorIndex;

/// <summary>
/// Firestore vector search's lifecycle on one machine (INDEX_BACKEND=firestore locally): one durable
/// <see cref="InProcessVectorIndex"/> that takes writes and answers queries from the first vector, with no build,
/// no endpoint and no deployment. Creating the index only fixes its dimension (a done operation at once); the
/// index and endpoint names the port passes are ignored, as Firestore's adapter ignores them. Distances follow the
/// same convention as every engine of the port (Vertex AI's).
/// </summary>
public sealed class LocalCollectionVectorIndex : IVectorIndexService, IDisposable
{
    private const string DimensionFile = "dimension";

    private readonly string _directory;
    private readonly DistanceMeasure _measure;
    private readonly ILogger<LocalCollectionVectorIndex> _logger;
    private readonly Lock _gate = new();
    private InProcessVectorIndex? _vectors;

    public LocalCollectionVectorIndex(string directory, DistanceMeasure measure, ILogger<LocalCollectionVectorIndex> logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        _directory = Path.GetFullPath(directory);
        _measure = measure;
        _logger = logger;
        var stored = Path.Combine(_directory, DimensionFile);
        if (File.Exists(stored))
        {
            _vectors = Open(int.Parse(File.ReadAllText(stored), CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Name of the one index, as the done creation operation reports it.</summary>
    public string IndexName => "local-vector-collection";

    public Task<LongRunningOperation> CreateIndexAsync(IndexDefinition definition, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(definition);
        Vectors(definition.Dimensions);
        var response = System.Text.Json.JsonSerializer.SerializeToElement(new { name = IndexName });
        return Task.FromResult(new LongRunningOperation(IndexName, Done: true, Response: response));
    }

    public Task<LongRunningOperation> GetOperationAsync(string operationName, CancellationToken cancellationToken = default) =>
        Task.FromResult(new LongRunningOperation(operationName, Done: true));

    public Task UpsertDatapointsAsync(string index, IReadOnlyList<IndexDatapoint> datapoints, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(datapoints);
        if (datapoints.Count > 0)
        {
            try
            {
                Vectors(datapoints[0].FeatureVector.Length).Upsert(datapoints);
            }
            catch (ArgumentException e)
            {
                throw new ServiceException(400, "INVALID_ARGUMENT", e.Message, e);
            }
        }

        return Task.CompletedTask;
    }

    public Task RemoveDatapointsAsync(string index, IReadOnlyList<string> datapointIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(datapointIds);
        lock (_gate)
        {
            _vectors?.Remove(datapointIds);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<QueryNeighbors>> FindNeighborsAsync(
        string publicEndpointDomainName,
        string indexEndpoint,
        string deployedIndexId,
        IReadOnlyList<NeighborQuery> queries,
        int neighborCount,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        InProcessVectorIndex? current;
        lock (_gate)
        {
            current = _vectors;
        }

        IReadOnlyList<QueryNeighbors> results = current is null
            ? queries.Select(q => new QueryNeighbors(q.DatapointId, [])).ToList()
            : current.Search(queries, neighborCount)
                .Select((matches, i) => new QueryNeighbors(queries[i].DatapointId, matches.Select(m => new Neighbor(m.Id, null, m.Distance)).ToList()))
                .ToList();
        return Task.FromResult(results);
    }

    public Task<IReadOnlyList<IndexDatapoint>> ReadDatapointsAsync(
        string publicEndpointDomainName,
        string indexEndpoint,
        string deployedIndexId,
        IReadOnlyList<string> datapointIds,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(datapointIds);
        InProcessVectorIndex? current;
        lock (_gate)
        {
            current = _vectors;
        }

        return Task.FromResult(current?.Read(datapointIds) ?? []);
    }

    public Task<LongRunningOperation> CreateIndexEndpointAsync(string displayName, CancellationToken cancellationToken = default) => throw NoEndpoint();

    public Task<LongRunningOperation> DeployIndexAsync(string indexEndpoint, DeployedIndexSpec deployedIndex, CancellationToken cancellationToken = default) =>
        throw NoEndpoint();

    public Task<IndexEndpointInfo> GetIndexEndpointAsync(string indexEndpoint, CancellationToken cancellationToken = default) => throw NoEndpoint();

    public void Dispose()
    {
        lock (_gate)
        {
            _vectors?.Dispose();
            _vectors = null;
        }
    }

    private InProcessVectorIndex Vectors(int dimensions)
    {
        lock (_gate)
        {
            if (_vectors is null)
            {
                Directory.CreateDirectory(_directory);
                File.WriteAllText(Path.Combine(_directory, DimensionFile), dimensions.ToString(CultureInfo.InvariantCulture));
                _vectors = Open(dimensions);
            }

            return _vectors.Dimensions == dimensions
                ? _vectors
                : throw new ServiceException(400, "INVALID_ARGUMENT", $"Vectors here have {_vectors.Dimensions} dimensions, not {dimensions}.");
        }
    }

    private InProcessVectorIndex Open(int dimensions) =>
        InProcessVectorIndex.Open(_directory, dimensions, _measure, normalizeToUnitLength: _measure == DistanceMeasure.Cosine, _logger);

    private static NotSupportedException NoEndpoint() =>
        new("With INDEX_BACKEND=firestore there is no index endpoint and nothing to deploy or delete.");
}
