using System.Text.Json;
using System.Text.Json.Serialization;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
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
}

internal sealed record IndexRecord(
    string Name,
    [property: JsonConverter(typeof(StoredIndexDefinitionConverter))] IndexDefinition Definition,
    IndexBuildPhase State);

/// <summary>
/// An index definition as the state file holds it. A file written before the definition was typed holds the
/// parameters' own values (distanceMeasureType DOT_PRODUCT_DISTANCE, algorithmConfig treeAhConfig, ...): it is read
/// as those, so an index built then reopens with its measure and search, and is written back in the typed form.
/// </summary>
internal sealed class StoredIndexDefinitionConverter : JsonConverter<IndexDefinition>
{
    public override IndexDefinition Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        using var document = JsonDocument.ParseValue(ref reader);
        var stored = document.RootElement;
        if (!stored.TryGetProperty("distanceMeasureType", out var measure))
        {
            return stored.Deserialize<IndexDefinition>(options) ?? throw new JsonException("An index definition is null.");
        }

        return new IndexDefinition(
            stored.GetProperty("displayName").GetString()!,
            stored.GetProperty("contentsDeltaUri").GetString()!,
            stored.GetProperty("dimensions").GetInt32(),
            stored.GetProperty("approximateNeighborsCount").GetInt32(),
            ParameterValues.TryParse(measure.GetString() ?? "", out DistanceMeasure distance) ? distance : throw Unreadable(measure),
            stored.GetProperty("featureNormType").GetString() == "UNIT_L2_NORM",
            ParameterValues.TryParse(stored.GetProperty("shardSize").GetString() ?? "", out IndexShardSize size) ? size : IndexShardSize.Small,
            ParameterValues.TryParse(stored.GetProperty("algorithmConfig").GetString() ?? "", out IndexAlgorithm algorithm) ? algorithm : IndexAlgorithm.BruteForce);
    }

    public override void Write(Utf8JsonWriter writer, IndexDefinition value, JsonSerializerOptions options) =>
        JsonSerializer.Serialize(writer, value, options);

    private static JsonException Unreadable(JsonElement measure) => new($"An index in the state file has the unknown distance measure {measure}.");
}

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
