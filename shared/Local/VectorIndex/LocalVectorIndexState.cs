using System.Text.Json;
using System.Text.Json.Serialization;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.Storage;

namespace ReverseImageSearch.Local.VectorIndex;

/// <summary>Where a local index is: its vectors being loaded from the datapoint files, or ready for queries.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<IndexBuildPhase>))]
internal enum IndexBuildPhase
{
    Building,
    Ready,
}

[JsonConverter(typeof(JsonStringEnumConverter<OperationKind>))]
internal enum OperationKind
{
    CreateIndex,
    CreateIndexEndpoint,
    DeployIndex,
    UndeployIndex,
    DeleteIndexEndpoint,
    DeleteIndex,
}

internal sealed record IndexRecord(string Name, IndexDefinition Definition, IndexBuildPhase State);

/// <param name="Ready">False while the deployment's operation runs.</param>
internal sealed record DeploymentRecord(string DeployedIndexId, string Index, bool Ready);

internal sealed record EndpointRecord(string Name, string DisplayName, string? PublicEndpointDomainName, IReadOnlyList<DeploymentRecord> Deployments);

/// <param name="Target">The resource the operation works on (index or endpoint name).</param>
/// <param name="DeployedIndexId">For DeployIndex: which deployment it completes.</param>
/// <param name="LastEventPublished">Whether the closing audit event went out; republished at start when not.</param>
internal sealed record OperationRecord(
    string Name,
    OperationKind Kind,
    string Target,
    bool Done,
    OperationError? Error = null,
    JsonElement? Response = null,
    string? DeployedIndexId = null,
    bool LastEventPublished = false)
{
    public LongRunningOperation ToOperation() => new(Name, Done, Error, Response);
}

/// <summary>Everything the service knows except the vectors themselves, kept in one JSON file.</summary>
internal sealed class LocalVectorIndexState
{
    public Dictionary<string, IndexRecord> Indexes { get; init; } = new(StringComparer.Ordinal);

    public Dictionary<string, EndpointRecord> Endpoints { get; init; } = new(StringComparer.Ordinal);

    public Dictionary<string, OperationRecord> Operations { get; init; } = new(StringComparer.Ordinal);

    public static LocalVectorIndexState Load(string path) =>
        File.Exists(path)
            ? JsonSerializer.Deserialize<LocalVectorIndexState>(File.ReadAllBytes(path), CoreJson.Options) ?? new LocalVectorIndexState()
            : new LocalVectorIndexState();

    public void Save(string path) => AtomicFile.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(this, CoreJson.Options));
}
