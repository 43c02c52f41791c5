using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Local.VectorIndex;

/// <summary>
/// Vertex AI Vector Search's lifecycle on one machine: indexes built from datapoint files in the object store,
/// endpoints, deployments, streaming upserts and exact queries over <see cref="InProcessVectorIndex"/>.
/// CreateIndex and DeployIndex finish in the background and announce themselves with the same audit-log
/// events Google writes (first and last entry), published on <see cref="LocalEventQueues.AuditLogWritten"/>.
/// All state survives a restart; operations interrupted by one are resumed.
/// </summary>
public sealed partial class LocalVectorIndexService : IVectorIndexService, IAsyncDisposable
{
    /// <summary>The publicEndpointDomainName deployed endpoints report; queries ignore it (there is one process).</summary>
    public const string LocalPublicEndpointDomainName = "localhost";

    public const string AuditServiceName = "aiplatform.googleapis.com";
    public const string CreateIndexMethodName = "google.cloud.aiplatform.v1.IndexService.CreateIndex";
    public const string DeployIndexMethodName = "google.cloud.aiplatform.v1.IndexEndpointService.DeployIndex";

    private const int InvalidArgumentCode = 3;
    private const int InternalCode = 13;
    private const int BuildBatchSize = 1024;

    private static readonly TimeSpan StorageRetryFirstDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan StorageRetryMaxDelay = TimeSpan.FromMinutes(1);

    private readonly string _parent;
    private readonly string _dataDirectory;
    private readonly string _statePath;
    private readonly IObjectStore _objectStore;
    private readonly ITaskQueue _taskQueue;
    private readonly ILogger<LocalVectorIndexService> _logger;
    private readonly TimeSpan _buildDelay;
    private readonly TimeSpan _deployDelay;
    private readonly Lock _gate = new();
    private readonly LocalVectorIndexState _state;
    private readonly Dictionary<string, InProcessVectorIndex> _openIndexes = new(StringComparer.Ordinal);
    private readonly List<Task> _background = [];
    private readonly CancellationTokenSource _shutdown = new();
    private int _disposed;

    public LocalVectorIndexService(
        string project,
        string location,
        string dataDirectory,
        IObjectStore objectStore,
        ITaskQueue taskQueue,
        ILogger<LocalVectorIndexService> logger,
        TimeSpan? buildDelay = null,
        TimeSpan? deployDelay = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(project);
        ArgumentException.ThrowIfNullOrEmpty(location);
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        _parent = $"projects/{project}/locations/{location}";
        _dataDirectory = Path.GetFullPath(dataDirectory);
        _statePath = Path.Combine(_dataDirectory, "vector-search-state.json");
        _objectStore = objectStore;
        _taskQueue = taskQueue;
        _logger = logger;
        _buildDelay = buildDelay ?? TimeSpan.Zero;
        _deployDelay = deployDelay ?? TimeSpan.Zero;

        Directory.CreateDirectory(_dataDirectory);
        _state = LocalVectorIndexState.Load(_statePath);
        foreach (var index in _state.Indexes.Values.Where(index => index.State == IndexBuildPhase.Ready))
        {
            _openIndexes[index.Name] = OpenIndex(index);
        }

        ResumeOperations();
    }

    public Task<LongRunningOperation> CreateIndexAsync(IndexDefinition definition, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(definition);
        ValidateDefinition(definition);
        OperationRecord operation;
        lock (_gate)
        {
            var index = $"{_parent}/indexes/{NewId()}";
            _state.Indexes[index] = new IndexRecord(index, definition, IndexBuildPhase.Building);
            operation = AddOperation(OperationKind.CreateIndex, index, done: false);
            SaveState();
        }

        _logger.LogInformation("Creating index {Index} from {Uri} ({Operation})", operation.Target, definition.ContentsDeltaUri, operation.Name);
        RunInBackground(() => BuildIndexAsync(operation.Name, _shutdown.Token));
        return Task.FromResult(operation.ToOperation());
    }

    /// <summary>Whether an index build or deployment still runs here, or its closing audit entry is not out yet.</summary>
    public bool HasPendingOperations
    {
        get
        {
            lock (_gate)
            {
                return _state.Operations.Values.Any(operation => operation.Kind is OperationKind.CreateIndex or OperationKind.DeployIndex
                    && (!operation.Done || !operation.LastEventPublished));
            }
        }
    }

    public Task<LongRunningOperation> GetOperationAsync(string operationName, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_state.Operations.TryGetValue(operationName, out var operation)
                ? operation.ToOperation()
                : throw NotFound($"Operation {operationName} does not exist."));
        }
    }

    public Task<LongRunningOperation> CreateIndexEndpointAsync(string displayName, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var endpoint = $"{_parent}/indexEndpoints/{NewId()}";
            _state.Endpoints[endpoint] = new EndpointRecord(endpoint, displayName, PublicEndpointDomainName: null, []);
            var operation = AddOperation(OperationKind.CreateIndexEndpoint, endpoint, done: true, response: NameResponse(endpoint));
            SaveState();
            _logger.LogInformation("Created index endpoint {Endpoint}", endpoint);
            return Task.FromResult(operation.ToOperation());
        }
    }

    public Task<LongRunningOperation> DeployIndexAsync(string indexEndpoint, DeployedIndexSpec deployedIndex, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(deployedIndex);
        if (!DeployedIndexIdPattern().IsMatch(deployedIndex.Id))
        {
            throw InvalidArgument($"Deployed index id '{deployedIndex.Id}' must start with a letter and hold only letters, digits and underscores (at most 128).");
        }

        OperationRecord operation;
        lock (_gate)
        {
            var endpoint = FindEndpoint(indexEndpoint);
            var index = _state.Indexes.TryGetValue(deployedIndex.Index, out var found) ? found : throw NotFound($"Index {deployedIndex.Index} does not exist.");
            if (index.State != IndexBuildPhase.Ready)
            {
                throw FailedPrecondition($"Index {index.Name} is still being created.");
            }

            if (_state.Endpoints.Values.Any(e => e.Deployments.Any(d => d.DeployedIndexId == deployedIndex.Id)))
            {
                throw new ServiceException(409, "ALREADY_EXISTS", $"Deployed index id {deployedIndex.Id} is already in use.");
            }

            _state.Endpoints[endpoint.Name] = endpoint with { Deployments = [.. endpoint.Deployments, new DeploymentRecord(deployedIndex.Id, index.Name, Ready: false)] };
            operation = AddOperation(OperationKind.DeployIndex, endpoint.Name, done: false, deployedIndexId: deployedIndex.Id);
            SaveState();
        }

        _logger.LogInformation("Deploying {Index} to {Endpoint} as {DeployedIndexId} ({Operation})", deployedIndex.Index, indexEndpoint, deployedIndex.Id, operation.Name);
        RunInBackground(() => DeployAsync(operation.Name, _shutdown.Token));
        return Task.FromResult(operation.ToOperation());
    }

    public Task<IndexEndpointInfo> GetIndexEndpointAsync(string indexEndpoint, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var endpoint = FindEndpoint(indexEndpoint);
            var deployed = endpoint.Deployments.Where(d => d.Ready).Select(d => d.DeployedIndexId).ToList();
            return Task.FromResult(new IndexEndpointInfo(endpoint.Name, endpoint.PublicEndpointDomainName, deployed));
        }
    }

    public Task UpsertDatapointsAsync(string index, IReadOnlyList<IndexDatapoint> datapoints, CancellationToken cancellationToken = default)
    {
        var vectors = ReadyIndex(index);
        try
        {
            vectors.Upsert(datapoints);
        }
        catch (ArgumentException e)
        {
            throw InvalidArgument(e.Message);
        }

        return Task.CompletedTask;
    }

    public Task RemoveDatapointsAsync(string index, IReadOnlyList<string> datapointIds, CancellationToken cancellationToken = default)
    {
        ReadyIndex(index).Remove(datapointIds);
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
        if (neighborCount <= 0)
        {
            throw InvalidArgument($"neighborCount must be positive, not {neighborCount}.");
        }

        var vectors = DeployedIndex(indexEndpoint, deployedIndexId);
        IReadOnlyList<IReadOnlyList<VectorMatch>> matches;
        try
        {
            matches = vectors.Search(queries, neighborCount);
        }
        catch (ArgumentException e)
        {
            throw InvalidArgument(e.Message);
        }

        IReadOnlyList<QueryNeighbors> results = queries
            .Select((query, i) => new QueryNeighbors(query.DatapointId, matches[i].Select(m => new Neighbor(m.Id, "0", m.Distance)).ToList()))
            .ToList();
        return Task.FromResult(results);
    }

    public Task<IReadOnlyList<IndexDatapoint>> ReadDatapointsAsync(
        string publicEndpointDomainName,
        string indexEndpoint,
        string deployedIndexId,
        IReadOnlyList<string> datapointIds,
        CancellationToken cancellationToken = default) =>
        Task.FromResult(DeployedIndex(indexEndpoint, deployedIndexId).Read(datapointIds));

    /// <summary>Stops background operations (they resume when a service is next constructed over the data directory).</summary>
    public async ValueTask DisposeAsync()
    {
        // Hosts may dispose a service registered under two types twice.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _shutdown.CancelAsync();
        Task[] running;
        lock (_gate)
        {
            running = [.. _background];
        }

        try
        {
            await Task.WhenAll(running);
        }
        catch (OperationCanceledException)
        {
        }

        lock (_gate)
        {
            foreach (var vectors in _openIndexes.Values)
            {
                vectors.Dispose();
            }

            _openIndexes.Clear();
        }

        _shutdown.Dispose();
    }

    private async Task BuildIndexAsync(string operationName, CancellationToken cancellationToken)
    {
        OperationRecord operation;
        IndexRecord index;
        lock (_gate)
        {
            operation = _state.Operations[operationName];
            index = _state.Indexes[operation.Target];
        }

        await PublishFirstEventAsync(CreateIndexMethodName, index.Name, operationName, cancellationToken);
        await Task.Delay(_buildDelay, cancellationToken);

        OperationError? error = null;
        InProcessVectorIndex? vectors = null;
        var retryDelay = StorageRetryFirstDelay;
        while (true)
        {
            try
            {
                var datapoints = await DatapointFiles.ReadAllAsync(_objectStore, index.Definition.ContentsDeltaUri, index.Definition.Dimensions, cancellationToken);
                DeleteIndexFiles(index.Name); // Anything there is a build interrupted by a restart or a failed attempt.
                vectors = OpenIndex(index);
                foreach (var batch in datapoints.Chunk(BuildBatchSize))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    vectors.Upsert(batch);
                }

                vectors.Compact();
                break;
            }
            catch (Exception e) when (e is InvalidDatapointFileException or ArgumentException)
            {
                error = new OperationError(InvalidArgumentCode, e.Message);
                break;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A full disk, a permission or a file in the way: the user can clear it, so the build waits
                // and tries again rather than failing the installation for good.
                vectors?.Dispose();
                vectors = null;
                _logger.LogWarning("Building index {Index} failed on storage ({Message}); trying again in {Delay}", index.Name, e.Message, retryDelay);
                await Task.Delay(retryDelay, cancellationToken);
                retryDelay = TimeSpan.FromTicks(Math.Min(retryDelay.Ticks * 2, StorageRetryMaxDelay.Ticks));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _logger.LogError(e, "Building index {Index} failed", index.Name);
                error = new OperationError(InternalCode, $"Building the index failed: {e.Message}");
                break;
            }
            catch (OperationCanceledException)
            {
                vectors?.Dispose();
                throw;
            }
        }

        lock (_gate)
        {
            if (error is not null || cancellationToken.IsCancellationRequested)
            {
                vectors?.Dispose();
                cancellationToken.ThrowIfCancellationRequested();
            }

            if (error is null)
            {
                _state.Indexes[index.Name] = index with { State = IndexBuildPhase.Ready };
                _openIndexes[index.Name] = vectors!;
                _state.Operations[operationName] = operation with { Done = true, Response = NameResponse(index.Name) };
            }
            else
            {
                // Like Vertex AI: a failed creation leaves no index behind, only the failed operation.
                _state.Indexes.Remove(index.Name);
                _state.Operations[operationName] = operation with { Done = true, Error = error };
            }

            SaveState();
        }

        if (error is null)
        {
            _logger.LogInformation("Index {Index} is ready with {Count} datapoint(s)", index.Name, vectors!.Count);
        }
        else
        {
            DeleteIndexFiles(index.Name);
            _logger.LogWarning("Creating index {Index} failed: {Message}", index.Name, error.Message);
        }

        await PublishLastEventAsync(operationName, cancellationToken);
    }

    private async Task DeployAsync(string operationName, CancellationToken cancellationToken)
    {
        OperationRecord operation;
        lock (_gate)
        {
            operation = _state.Operations[operationName];
        }

        await PublishFirstEventAsync(DeployIndexMethodName, operation.Target, operationName, cancellationToken);
        await Task.Delay(_deployDelay, cancellationToken);

        lock (_gate)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var deployment = _state.Endpoints.TryGetValue(operation.Target, out var endpoint)
                ? endpoint.Deployments.FirstOrDefault(d => d.DeployedIndexId == operation.DeployedIndexId)
                : null;
            if (endpoint is null || deployment is null)
            {
                _state.Operations[operationName] = operation with { Done = true, Error = new OperationError(1, "The deployment was undeployed before it finished.") };
            }
            else
            {
                _state.Endpoints[endpoint.Name] = endpoint with
                {
                    PublicEndpointDomainName = LocalPublicEndpointDomainName,
                    Deployments = endpoint.Deployments.Select(d => d == deployment ? d with { Ready = true } : d).ToList(),
                };
                var response = JsonSerializer.SerializeToElement(new { deployedIndex = new { id = deployment.DeployedIndexId, index = deployment.Index } });
                _state.Operations[operationName] = operation with { Done = true, Response = response };
            }

            SaveState();
        }

        _logger.LogInformation("Deployment {DeployedIndexId} on {Endpoint} finished", operation.DeployedIndexId, operation.Target);
        await PublishLastEventAsync(operationName, cancellationToken);
    }

    /// <summary>Publishes the closing audit event and records that it went out, so a restart does not lose it.</summary>
    private async Task PublishLastEventAsync(string operationName, CancellationToken cancellationToken)
    {
        OperationRecord operation;
        lock (_gate)
        {
            operation = _state.Operations[operationName];
        }

        var method = operation.Kind == OperationKind.CreateIndex ? CreateIndexMethodName : DeployIndexMethodName;
        var delay = TimeSpan.FromMilliseconds(200);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await PublishAuditEventAsync(method, operation.Target, operationName, first: false, cancellationToken);
                break;
            }
            catch (Exception e) when (e is not OperationCanceledException && attempt < 5)
            {
                _logger.LogWarning(e, "Publishing the audit event of {Operation} failed (attempt {Attempt}); retrying", operationName, attempt);
                await Task.Delay(delay, cancellationToken);
                delay *= 2;
            }
        }

        lock (_gate)
        {
            if (_state.Operations.TryGetValue(operationName, out var current))
            {
                _state.Operations[operationName] = current with { LastEventPublished = true };
                SaveState();
            }
        }
    }

    /// <summary>Handlers act only on the last entry, so a lost first entry is logged rather than allowed to stall the operation.</summary>
    private async Task PublishFirstEventAsync(string methodName, string resourceName, string operationName, CancellationToken cancellationToken)
    {
        try
        {
            await PublishAuditEventAsync(methodName, resourceName, operationName, first: true, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _logger.LogWarning(e, "Publishing the first audit event of {Operation} failed", operationName);
        }
    }

    private Task PublishAuditEventAsync(string methodName, string resourceName, string operationName, bool first, CancellationToken cancellationToken)
    {
        var auditEvent = new AuditLogEvent(AuditServiceName, methodName, resourceName, operationName, First: first, Last: !first);
        return _taskQueue.EnqueueAsync(LocalEventQueues.AuditLogWritten, JsonSerializer.SerializeToElement(auditEvent, CoreJson.Options), options: null, cancellationToken);
    }

    private void ResumeOperations()
    {
        foreach (var operation in _state.Operations.Values.ToList())
        {
            switch (operation)
            {
                case { Done: false, Kind: OperationKind.CreateIndex }:
                    _logger.LogInformation("Resuming {Operation} after a restart", operation.Name);
                    RunInBackground(() => BuildIndexAsync(operation.Name, _shutdown.Token));
                    break;
                case { Done: false, Kind: OperationKind.DeployIndex }:
                    _logger.LogInformation("Resuming {Operation} after a restart", operation.Name);
                    RunInBackground(() => DeployAsync(operation.Name, _shutdown.Token));
                    break;
                case { Done: true, LastEventPublished: false, Kind: OperationKind.CreateIndex or OperationKind.DeployIndex }:
                    RunInBackground(() => PublishLastEventAsync(operation.Name, _shutdown.Token));
                    break;
            }
        }
    }

    private void RunInBackground(Func<Task> work)
    {
        var task = Task.Run(async () =>
        {
            try
            {
                await work();
            }
            catch (OperationCanceledException) when (_shutdown.IsCancellationRequested)
            {
                // Stopped by DisposeAsync; the operation is resumed by the next service over this data directory.
            }
            catch (Exception e)
            {
                _logger.LogError(e, "A background vector-search operation failed; it resumes when the service restarts");
            }
        });
        lock (_gate)
        {
            _background.RemoveAll(t => t.IsCompleted);
            _background.Add(task);
        }
    }

    private InProcessVectorIndex ReadyIndex(string index)
    {
        lock (_gate)
        {
            var record = _state.Indexes.TryGetValue(index, out var found) ? found : throw NotFound($"Index {index} does not exist.");
            return record.State == IndexBuildPhase.Ready
                ? _openIndexes[index]
                : throw FailedPrecondition($"Index {index} is still being created.");
        }
    }

    private InProcessVectorIndex DeployedIndex(string indexEndpoint, string deployedIndexId)
    {
        lock (_gate)
        {
            var endpoint = FindEndpoint(indexEndpoint);
            var deployment = endpoint.Deployments.FirstOrDefault(d => d.DeployedIndexId == deployedIndexId && d.Ready)
                ?? throw NotFound($"Deployed index {deployedIndexId} is not deployed to {indexEndpoint}.");
            return _openIndexes[deployment.Index];
        }
    }

    private EndpointRecord FindEndpoint(string indexEndpoint) =>
        _state.Endpoints.TryGetValue(indexEndpoint, out var endpoint) ? endpoint : throw NotFound($"Index endpoint {indexEndpoint} does not exist.");

    private InProcessVectorIndex OpenIndex(IndexRecord index)
    {
        // Tree-AH is Vertex AI's approximate (quantised, rescored) search; locally it is the int8 search.
        // Brute force is exact there, and here: int8-filtered, with the float32 scan's very answers.
        var definition = index.Definition;
        var searchMode = definition.Algorithm == IndexAlgorithm.TreeAh ? VectorSearchMode.Quantized : VectorSearchMode.Exact;
        // A damaged snapshot is rebuilt from what the index was built from (the journal then adds the changes
        // since). Read synchronously: this runs while the service opens, on local files.
        return InProcessVectorIndex.Open(
            IndexDirectory(index.Name), definition.Dimensions, definition.DistanceMeasure, definition.NormalizeToUnitLength, _logger, searchMode,
            rebuildFrom: () => DatapointFiles.ReadAllAsync(_objectStore, definition.ContentsDeltaUri, definition.Dimensions, CancellationToken.None).GetAwaiter().GetResult());
    }

    private void DeleteIndexFiles(string index)
    {
        var directory = IndexDirectory(index);
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private string IndexDirectory(string index) => Path.Combine(_dataDirectory, "indexes", index[(index.LastIndexOf('/') + 1)..]);

    private OperationRecord AddOperation(OperationKind kind, string target, bool done, JsonElement? response = null, string? deployedIndexId = null)
    {
        var operation = new OperationRecord($"{target}/operations/{NewId()}", kind, target, done, Response: response, DeployedIndexId: deployedIndexId);
        _state.Operations[operation.Name] = operation;
        return operation;
    }

    private void SaveState() => _state.Save(_statePath);

    private static void ValidateDefinition(IndexDefinition definition)
    {
        if (definition.Dimensions <= 0)
        {
            throw InvalidArgument($"config.dimensions must be positive, not {definition.Dimensions}.");
        }

        try
        {
            DatapointFiles.ParseFolderUri(definition.ContentsDeltaUri);
        }
        catch (ArgumentException e)
        {
            throw InvalidArgument(e.Message);
        }
    }

    private static JsonElement NameResponse(string name) => JsonSerializer.SerializeToElement(new { name });

    /// <summary>Numeric ids, as Vertex AI gives its resources.</summary>
    private static string NewId() => Random.Shared.NextInt64(1_000_000_000_000_000_000, long.MaxValue).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static ServiceException NotFound(string message) => new(404, "NOT_FOUND", message);

    private static ServiceException InvalidArgument(string message) => new(400, "INVALID_ARGUMENT", message);

    private static ServiceException FailedPrecondition(string message) => new(400, "FAILED_PRECONDITION", message);

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_]{0,127}$")]
    private static partial Regex DeployedIndexIdPattern();
}
