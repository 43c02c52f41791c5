using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Local;
using ReverseImageSearch.Local.VectorIndex;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp.Pipeline;

/// <summary>
/// Vertex AI Vector Search for the simulated cloud: the aiplatform v1 REST calls the adapter makes (served through
/// the contract server; findNeighbors arrives there through the public-endpoint override) translated onto a
/// <see cref="LocalVectorIndexService"/> that reads the datapoint files from the simulated Cloud Storage. Playing
/// Eventarc for Cloud Audit Logs, it posts google.cloud.audit.log.v1.written entries (first and last) of CreateIndex
/// to onIndexCreated and of DeployIndex to onIndexDeployed, the triggers' methodName filters.
/// Crowding as Vertex AI does it: every datapoint written (upserted, or a line of the files an index is built from) must
/// carry its crowding attribute, its image (a datapoint without one shares the default with every other such, and one
/// neighbour per attribute would then answer one of them only); once views (MATCH_CROPS) are in the index, a query
/// without perCrowdingAttributeNeighborCount 1 would get an image several times. Either is recorded as a problem.
/// Neighbours are answered with the crowding attribute they were written with.
/// </summary>
public sealed class SimulatedVectorSearch : ITaskQueue, IAsyncDisposable
{
    /// <summary>What a deployed public endpoint reports (Google's shape); requests reach us through the override.</summary>
    public const string PublicDomain = "1234567890.us-central1-987654321098.vdb.vertexai.goog";

    private const string V1 = "type.googleapis.com/google.cloud.aiplatform.v1.";
    private readonly string _projectId;
    private readonly Func<string, LocalVectorIndexService> _newService;
    private readonly string _dataDirectory;
    private readonly IObjectStore _storage;
    private LocalVectorIndexService _service;
    private int _installations;

    /// <summary>Each datapoint's crowding attribute as written; whether any view was.</summary>
    private readonly ConcurrentDictionary<string, string> _crowding = new(StringComparer.Ordinal);
    private int _viewsWritten;

    /// <summary>How many views (MATCH_CROPS) were written, by upsert or in the files an index was built from.</summary>
    public int ViewsWritten => Volatile.Read(ref _viewsWritten);

    public SimulatedVectorSearch(ContractServer server, string projectId, string location, string dataDirectory, IObjectStore storage, TimeSpan operationLatency)
    {
        _projectId = projectId;
        _dataDirectory = dataDirectory;
        _storage = storage;
        // The latency stands for Vertex AI's minutes-long builds: the audit entry must not overtake the function
        // that started the operation and records its name.
        _newService = directory => new LocalVectorIndexService(
            _projectId, location, directory, storage, this, NullLogger<LocalVectorIndexService>.Instance, operationLatency, operationLatency);
        _service = _newService(_dataDirectory);
        const string p = "aiplatform.projects.locations.";
        Route(server, p + "indexes.create", r => CallAsync(() => CreateIndexAsync(r)));
        Route(server, p + "indexes.list", r => CallAsync(() => Task.FromResult<object>(List("indexes", r))));
        Route(server, p + "indexEndpoints.list", r => CallAsync(() => Task.FromResult<object>(List("indexEndpoints", r))));
        Route(server, p + "indexes.operations.list", r => CallAsync(() => CreationOperationsAsync(Resource(r, "/operations"))));
        Route(server, p + "indexes.operations.get", r => CallAsync(() => OperationAsync(_service.GetOperationAsync(Resource(r)))));
        Route(server, p + "indexEndpoints.operations.get", r => CallAsync(() => OperationAsync(_service.GetOperationAsync(Resource(r)))));
        Route(server, p + "indexEndpoints.create", r => CallAsync(() => CreateEndpointAsync(r)));
        Route(server, p + "indexEndpoints.get", r => CallAsync(() => GetEndpointAsync(r)));
        Route(server, p + "indexEndpoints.deployIndex", r => CallAsync(() => DeployAsync(r)));
        Route(server, p + "indexes.upsertDatapoints", r => CallAsync(() => UpsertAsync(r)));
        Route(server, p + "indexes.removeDatapoints", r => CallAsync(() => RemoveAsync(r)));
        Route(server, p + "indexEndpoints.findNeighbors", r => CallAsync(() => FindNeighborsAsync(r)));
        Route(server, p + "indexEndpoints.readIndexDatapoints", r => CallAsync(() => ReadDatapointsAsync(r)));
    }

    /// <summary>
    /// What deploy.sh uninstall does with gcloud (undeploy, delete the endpoint, delete the index): every Vector Search
    /// resource made so far is gone, and a name of one is not found from now on.
    /// </summary>
    public async Task UninstallAsync()
    {
        await _service.DisposeAsync();
        _created.Clear();
        _crowding.Clear();
        _service = _newService(Path.Combine(_dataDirectory, $"after-uninstall-{++_installations}"));
    }

    /// <summary>Set once the functions are up: where audit-log entries are delivered.</summary>
    public Eventarc? AuditLogs { get; set; }

    public ConcurrentQueue<string> Problems { get; } = new();

    /// <summary>Every audit entry written: method, resource, first/last.</summary>
    public ConcurrentQueue<AuditLogEvent> AuditEntries { get; } = new();

    public ValueTask DisposeAsync() => _service.DisposeAsync();

    /// <summary>The local service publishes its audit entries here (as it does on the local task queue).</summary>
    public async Task<bool> EnqueueAsync(string functionName, JsonElement payload, TaskOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (functionName != LocalEventQueues.AuditLogWritten)
        {
            throw new InvalidOperationException($"Unexpected queue {functionName}.");
        }

        var entry = payload.Deserialize<AuditLogEvent>(CoreJson.Options)!;
        AuditEntries.Enqueue(entry);
        var function = entry.MethodName switch
        {
            LocalVectorIndexService.CreateIndexMethodName => "onIndexCreated",
            LocalVectorIndexService.DeployIndexMethodName => "onIndexDeployed",
            _ => null,
        };
        if (function is null || AuditLogs is not { } eventarc)
        {
            return true;
        }

        var now = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
        var operation = new JsonObject { ["id"] = entry.OperationId, ["producer"] = entry.ServiceName };
        operation[entry.First ? "first" : "last"] = true;
        var logEntry = new JsonObject
        {
            ["protoPayload"] = new JsonObject
            {
                ["@type"] = "type.googleapis.com/google.cloud.audit.AuditLog",
                ["status"] = new JsonObject(),
                ["authenticationInfo"] = new JsonObject { ["principalEmail"] = $"ext-ris@{_projectId}.iam.gserviceaccount.com" },
                ["serviceName"] = entry.ServiceName,
                ["methodName"] = entry.MethodName,
                ["resourceName"] = entry.ResourceName,
                ["request"] = new JsonObject { ["@type"] = V1 + (entry.MethodName.EndsWith("CreateIndex", StringComparison.Ordinal) ? "CreateIndexRequest" : "DeployIndexRequest") },
            },
            ["insertId"] = Guid.NewGuid().ToString("N")[..12],
            ["resource"] = new JsonObject
            {
                ["type"] = "audited_resource",
                ["labels"] = new JsonObject { ["service"] = entry.ServiceName, ["method"] = entry.MethodName, ["project_id"] = _projectId },
            },
            ["timestamp"] = now,
            ["severity"] = "NOTICE",
            ["logName"] = $"projects/{_projectId}/logs/cloudaudit.googleapis.com%2Factivity",
            ["operation"] = operation,
            ["receiveTimestamp"] = now,
        };
        var status = await eventarc.PostAsync(
            function,
            "google.cloud.audit.log.v1.written",
            $"//cloudaudit.googleapis.com/projects/{_projectId}/logs/activity",
            $"{entry.ServiceName}/{entry.ResourceName}",
            new Dictionary<string, string>
            {
                ["servicename"] = entry.ServiceName,
                ["methodname"] = entry.MethodName,
                ["resourcename"] = entry.ResourceName,
                ["recordedtime"] = now,
            },
            JsonSerializer.SerializeToUtf8Bytes(logEntry),
            "application/json; charset=utf-8",
            cancellationToken);
        if (status / 100 != 2)
        {
            Problems.Enqueue($"{function} answered {status} to the audit entry of {entry.OperationId} (last: {entry.Last})");
            throw new HttpRequestException($"{function} answered {status}");
        }

        return true;
    }

    private static void Route(ContractServer server, string methodId, Func<RecordedRequest, Task<Reply>> handler) =>
        server.Handlers[methodId] = handler;

    private static async Task<Reply> CallAsync(Func<Task<object>> call)
    {
        try
        {
            return Reply.Ok(JsonSerializer.Serialize(await call()));
        }
        catch (ServiceException e)
        {
            return Reply.Error(e.HttpStatus, e.Status, e.ServiceMessage);
        }
    }

    /// <summary>The resource name in the path: /v1/{name}[suffix].</summary>
    private static string Resource(RecordedRequest r, string suffix = "")
    {
        var path = Uri.UnescapeDataString(r.RawPath);
        var name = path.StartsWith("/v1/", StringComparison.Ordinal) ? path["/v1/".Length..] : path;
        return suffix.Length > 0 && name.EndsWith(suffix, StringComparison.Ordinal) ? name[..^suffix.Length] : name;
    }

    private static async Task<object> OperationAsync(Task<LongRunningOperation> call)
    {
        var op = await call;
        var json = new JsonObject
        {
            ["name"] = op.Name,
            ["metadata"] = new JsonObject { ["@type"] = V1 + "GenericOperationMetadata" },
        };
        if (op.Done)
        {
            json["done"] = true;
        }

        if (op.Error is { } error)
        {
            json["error"] = new JsonObject { ["code"] = error.Code, ["message"] = error.Message };
        }
        else if (op.Response is { } response)
        {
            var body = JsonNode.Parse(response.GetRawText())!.AsObject();
            body["@type"] = V1 + (op.Name.Contains("/indexEndpoints/", StringComparison.Ordinal)
                ? body.ContainsKey("deployedIndex") ? "DeployIndexResponse" : "IndexEndpoint"
                : "Index");
            json["response"] = body;
        }

        return json;
    }

    /// <summary>What indexes.create and indexEndpoints.create made: resource name -> (collection, displayName, creating operation).</summary>
    private readonly ConcurrentDictionary<string, (string Collection, string DisplayName, string? Operation)> _created = new();

    /// <summary>How many indexes / endpoints were created (orphans show up as more than one).</summary>
    public int CreatedCount(string collection) => _created.Values.Count(c => c.Collection == collection);

    private JsonObject List(string collection, RecordedRequest r)
    {
        // The adapter filters by display_name="..." (the only filter it sends).
        var filter = r.QueryValue("filter") ?? "";
        var items = _created
            .Where(c => c.Value.Collection == collection && filter == $"display_name=\"{c.Value.DisplayName}\"")
            .Select(c => (JsonNode)new JsonObject { ["name"] = c.Key, ["displayName"] = c.Value.DisplayName })
            .ToArray();
        return new JsonObject { [collection] = new JsonArray(items) };
    }

    private async Task<object> CreationOperationsAsync(string index)
    {
        var operations = new JsonArray();
        if (_created.TryGetValue(index, out var c) && c.Operation is { } name)
        {
            var op = (JsonObject)JsonSerializer.SerializeToNode(await OperationAsync(_service.GetOperationAsync(name)))!;
            op["metadata"] = new JsonObject { ["@type"] = V1 + "CreateIndexOperationMetadata" };
            operations.Add(op);
        }

        return new JsonObject { ["operations"] = operations };
    }

    private async Task<object> RememberAsync(string collection, string displayName, Task<LongRunningOperation> creation)
    {
        var op = await creation;
        var resource = op.ResponseResourceName ?? ReverseImageSearch.Core.Coordination.ResourceNames.OwnerOfOperation(op.Name);
        _created[resource] = (collection, displayName, op.Name);
        return await OperationAsync(Task.FromResult(op));
    }

    private async Task<object> CreateIndexAsync(RecordedRequest r)
    {
        var index = r.Json;
        var metadata = index.GetProperty("metadata");
        var config = metadata.GetProperty("config");
        if (index.GetProperty("indexUpdateMethod").GetString() != "STREAM_UPDATE")
        {
            Problems.Enqueue("indexes.create without indexUpdateMethod STREAM_UPDATE: upserts would be refused");
        }

        var algorithm = config.GetProperty("algorithmConfig").EnumerateObject().Single().Name;
        await CheckDatapointFilesAsync(metadata.GetProperty("contentsDeltaUri").GetString()!);
        var definition = new IndexDefinition(
            index.GetProperty("displayName").GetString()!,
            metadata.GetProperty("contentsDeltaUri").GetString()!,
            config.GetProperty("dimensions").GetInt32(),
            config.GetProperty("approximateNeighborsCount").GetInt32(),
            config.GetProperty("distanceMeasureType").GetString() switch
            {
                "SQUARED_L2_DISTANCE" => DistanceMeasure.SquaredL2,
                "L1_DISTANCE" => DistanceMeasure.L1,
                "COSINE_DISTANCE" => DistanceMeasure.Cosine,
                "DOT_PRODUCT_DISTANCE" => DistanceMeasure.DotProduct,
                var other => throw new InvalidDataException($"indexes.create with distanceMeasureType {other}"),
            },
            config.TryGetProperty("featureNormType", out var norm) && norm.GetString() == "UNIT_L2_NORM",
            config.TryGetProperty("shardSize", out var shard) && shard.GetString() is { } size && size != "SHARD_SIZE_SMALL"
                ? (size == "SHARD_SIZE_MEDIUM" ? IndexShardSize.Medium : IndexShardSize.Large)
                : IndexShardSize.Small,
            algorithm == "treeAhConfig" ? IndexAlgorithm.TreeAh : IndexAlgorithm.BruteForce);
        return await RememberAsync("indexes", definition.DisplayName, _service.CreateIndexAsync(definition));
    }

    /// <summary>The crowding tag of every line of the JSON-lines files an index is built from ("crowding_tag").</summary>
    private async Task CheckDatapointFilesAsync(string contentsDeltaUri)
    {
        var path = contentsDeltaUri["gs://".Length..];
        var bucket = path.Split('/')[0];
        var prefix = path[(bucket.Length + 1)..].TrimEnd('/') + "/";
        await foreach (var file in _storage.ListAsync(bucket, prefix))
        {
            if (file.Name[prefix.Length..].Contains('/', StringComparison.Ordinal) || !file.Name.EndsWith(".json", StringComparison.Ordinal))
            {
                continue;
            }

            foreach (var line in System.Text.Encoding.UTF8.GetString(await _storage.ReadAsync(bucket, file.Name)).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                using var json = JsonDocument.Parse(line);
                var id = json.RootElement.GetProperty("id").GetString()!;
                Written(id, json.RootElement.TryGetProperty("crowding_tag", out var tag) ? tag.GetString() : null, $"line of {file.Name}");
            }
        }
    }

    /// <summary>Records a datapoint's crowding attribute, and a problem when it is not its image.</summary>
    private void Written(string id, string? crowdingAttribute, string where)
    {
        if (crowdingAttribute != ReverseImageSearch.Core.Coordination.ImageViews.ImageOf(id))
        {
            Problems.Enqueue($"{where}: datapoint {JsonSerializer.Serialize(id)} written with crowding attribute {JsonSerializer.Serialize(crowdingAttribute)}, not its image");
        }

        if (crowdingAttribute is not null)
        {
            _crowding[id] = crowdingAttribute;
        }

        if (ReverseImageSearch.Core.Coordination.ImageViews.IsView(id))
        {
            Interlocked.Increment(ref _viewsWritten);
        }
    }

    private Task<object> CreateEndpointAsync(RecordedRequest r)
    {
        var body = r.Json;
        if (!body.TryGetProperty("publicEndpointEnabled", out var enabled) || !enabled.GetBoolean())
        {
            Problems.Enqueue("indexEndpoints.create without publicEndpointEnabled: findNeighbors would have no public host");
        }

        var displayName = body.GetProperty("displayName").GetString()!;
        return RememberAsync("indexEndpoints", displayName, _service.CreateIndexEndpointAsync(displayName));
    }

    private async Task<object> GetEndpointAsync(RecordedRequest r)
    {
        var info = await _service.GetIndexEndpointAsync(Resource(r));
        var json = new JsonObject
        {
            ["name"] = info.Name,
            ["publicEndpointEnabled"] = true,
            ["deployedIndexes"] = new JsonArray(info.DeployedIndexIds.Select(id => (JsonNode)new JsonObject { ["id"] = id }).ToArray()),
        };
        if (info.PublicEndpointDomainName is not null)
        {
            json["publicEndpointDomainName"] = PublicDomain;
        }

        return json;
    }

    private Task<object> DeployAsync(RecordedRequest r)
    {
        var deployed = r.Json.GetProperty("deployedIndex");
        var resources = deployed.GetProperty("dedicatedResources");
        var machine = resources.GetProperty("machineSpec");
        var spec = new DeployedIndexSpec(
            deployed.GetProperty("id").GetString()!,
            deployed.GetProperty("index").GetString()!,
            machine.GetProperty("machineType").GetString()!,
            machine.TryGetProperty("acceleratorType", out var type) ? type.GetString()! : "ACCELERATOR_TYPE_UNSPECIFIED",
            machine.TryGetProperty("acceleratorCount", out var count) ? count.GetInt32() : 0,
            resources.GetProperty("minReplicaCount").GetInt32(),
            resources.TryGetProperty("maxReplicaCount", out var max) ? max.GetInt32() : 1);
        return OperationAsync(_service.DeployIndexAsync(Resource(r, ":deployIndex"), spec));
    }

    private async Task<object> UpsertAsync(RecordedRequest r)
    {
        var datapoints = r.Json.GetProperty("datapoints").EnumerateArray()
            .Select(d =>
            {
                var id = d.GetProperty("datapointId").GetString()!;
                var crowding = d.TryGetProperty("crowdingTag", out var tag) && tag.TryGetProperty("crowdingAttribute", out var a) ? a.GetString() : null;
                Written(id, crowding, "upsertDatapoints");
                return new IndexDatapoint(id, d.GetProperty("featureVector").EnumerateArray().Select(v => v.GetSingle()).ToArray(), CrowdingTag: crowding == id ? null : crowding);
            })
            .ToArray();
        await _service.UpsertDatapointsAsync(Resource(r, ":upsertDatapoints"), datapoints);
        return new JsonObject();
    }

    // The in-process index takes an image's folders from its name; a query's folder is its allow list in namespace "folder".
    private static string? FolderAllowed(JsonElement datapoint) =>
        datapoint.TryGetProperty("restricts", out var restricts)
            ? restricts.EnumerateArray()
                .Where(x => x.GetProperty("namespace").GetString() == "folder")
                .Select(x => x.GetProperty("allowList")[0].GetString())
                .FirstOrDefault()
            : null;

    private async Task<object> ReadDatapointsAsync(RecordedRequest r)
    {
        var read = await _service.ReadDatapointsAsync(
            PublicDomain,
            Resource(r, ":readIndexDatapoints"),
            r.Json.GetProperty("deployedIndexId").GetString()!,
            r.Json.GetProperty("ids").EnumerateArray().Select(i => i.GetString()!).ToArray());
        return new JsonObject
        {
            ["datapoints"] = new JsonArray(read.Select(d => (JsonNode)new JsonObject
            {
                ["datapointId"] = d.DatapointId,
                ["featureVector"] = new JsonArray(d.FeatureVector.Select(v => (JsonNode)v).ToArray()),
            }).ToArray()),
        };
    }

    private async Task<object> RemoveAsync(RecordedRequest r)
    {
        var ids = r.Json.GetProperty("datapointIds").EnumerateArray().Select(d => d.GetString()!).ToArray();
        await _service.RemoveDatapointsAsync(Resource(r, ":removeDatapoints"), ids);
        return new JsonObject();
    }

    private async Task<object> FindNeighborsAsync(RecordedRequest r)
    {
        var body = r.Json;
        var queries = body.GetProperty("queries").EnumerateArray().ToArray();
        var neighborCount = queries.Length > 0 && queries[0].TryGetProperty("neighborCount", out var n) ? n.GetInt32() : 10;
        var crowded = queries.All(q => q.TryGetProperty("perCrowdingAttributeNeighborCount", out var c) && c.GetInt32() == 1);
        if (ViewsWritten > 0 && !crowded)
        {
            // The in-process index answers each image once whatever is asked; Vertex AI would answer its views too.
            Problems.Enqueue("findNeighbors without perCrowdingAttributeNeighborCount 1 on an index holding views: an image would answer several times");
        }

        var results = await _service.FindNeighborsAsync(
            PublicDomain,
            Resource(r, ":findNeighbors"),
            body.GetProperty("deployedIndexId").GetString()!,
            queries.Select(q => q.GetProperty("datapoint")).Select(d => new NeighborQuery(
                d.TryGetProperty("datapointId", out var id) ? id.GetString()! : "",
                d.GetProperty("featureVector").EnumerateArray().Select(v => v.GetSingle()).ToArray(),
                FolderAllowed(d))).ToArray(),
            neighborCount);
        return new JsonObject
        {
            ["nearestNeighbors"] = new JsonArray(results.Select(q => (JsonNode)new JsonObject
            {
                ["id"] = q.Id,
                ["neighbors"] = new JsonArray(q.Neighbors.Select(x =>
                {
                    var neighbor = new JsonObject
                    {
                        ["datapoint"] = new JsonObject
                        {
                            ["datapointId"] = x.DatapointId,
                            ["crowdingTag"] = new JsonObject { ["crowdingAttribute"] = _crowding.TryGetValue(x.DatapointId, out var written) ? written : "0" },
                        },
                    };
                    if (x.Distance != 0)
                    {
                        neighbor["distance"] = x.Distance; // proto3 JSON omits a distance of 0
                    }

                    return (JsonNode)neighbor;
                }).ToArray()),
            }).ToArray()),
        };
    }
}
