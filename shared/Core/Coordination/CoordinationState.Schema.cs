using System.Reflection;
using System.Text.Json.Serialization;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Core.Coordination;

/// <summary>
/// The coordination documents' shape, exactly the original extension's (seed/BEHAVIOUR.md) plus this version's own
/// fields: every field name is written here only, and every record is read from and written to its fields here only.
/// </summary>
public sealed partial class CoordinationState
{
    // Metadata document: the original's fields.
    private const string StatusField = "status";
    private const string OperationField = "operation";
    private const string IndexField = "index";
    private const string IndexEndpointField = "indexEndpoint";
    private const string PublicEndpointDomainNameField = "publicEndpointDomainName";
    private const string OutputShapeField = "outputShape";

    // Metadata document: this version's. The error as {function, message, time}; the embedding settings; the creation claim.
    private const string ErrorField = "error";
    private const string ErrorFunctionField = "function";
    private const string ErrorMessageField = "message";
    private const string ErrorTimeField = "time";
    private const string EmbeddingModelField = "embeddingModel";
    private const string MatchColorField = "matchColor";
    private const string MatchCropsField = "matchCrops";
    private const string CreationClaimField = "indexCreationClaim";
    private const string CreationClaimedAtField = "indexCreationClaimedAt";

    // Tasks document (status as above): the original's totalLength and processedLength; the run and, once every chunk
    // of its plan is recorded, the chunk count.
    private const string TotalLengthField = "totalLength";
    private const string ProcessedLengthField = "processedLength";
    private const string RunIdField = "runId";
    private const string ChunkCountField = "chunkCount";

    // Enqueue (chunk) documents: the original's taskId, status, objects and filePath; the error of a failed chunk.
    private const string TaskIdField = "taskId";
    private const string ObjectsField = "objects";
    private const string FilePathField = "filePath";

    // Per-image records: path, status, the content indexed (md5Hash, generation), or the reason it was skipped.
    private const string PathField = "path";
    private const string Md5HashField = "md5Hash";
    private const string GenerationField = "generation";
    private const string ReasonField = "reason";

    /// <summary>A status as the documents (and JSON answers) spell it: INDEX_DEPLOYED, DONE, SKIPPED, ...</summary>
    public static string StatusName<T>(T status) where T : struct, Enum => StatusNames<T>.Names[status];

    /// <summary>A recorded status as the documents spell it; null when none is recorded.</summary>
    public static string? StatusName<T>(T? status) where T : struct, Enum => status is { } known ? StatusName(known) : null;

    /// <summary>A per-image record read from a listing of <see cref="CoordinationDocuments.Datapoints"/>.</summary>
    public static DatapointRecord ReadDatapointRecord(DocumentSnapshot doc)
    {
        ArgumentNullException.ThrowIfNull(doc);
        return ToDatapointRecord(doc.GetString(PathField) ?? Uri.UnescapeDataString(doc.Path[(doc.Path.LastIndexOf('/') + 1)..]), doc);
    }

    /// <summary>A backfill chunk read from a listing of <see cref="CoordinationDocuments.Enqueues"/>.</summary>
    public static BackfillChunkRecord ReadBackfillChunk(DocumentSnapshot doc)
    {
        ArgumentNullException.ThrowIfNull(doc);
        return new BackfillChunkRecord(
            doc.GetString(TaskIdField) ?? doc.Path[(doc.Path.LastIndexOf('/') + 1)..],
            ReadStatus<BackfillStatus>(doc),
            doc[ObjectsField] is IReadOnlyList<object?> objects ? objects.OfType<string>().ToArray() : [],
            doc.GetString(FilePathField),
            doc.GetString(ErrorField));
    }

    private static IndexMetadata ToIndexMetadata(DocumentSnapshot doc) => new(
        ReadStatus<IndexStatus>(doc),
        doc.GetString(OperationField),
        doc.GetString(IndexField),
        doc.GetString(IndexEndpointField),
        doc.GetString(PublicEndpointDomainNameField),
        doc.GetInt64(OutputShapeField),
        // No record: the index was made before the settings were recorded, when the model was always fed luma; no
        // matchCrops: made before MATCH_CROPS, without views.
        doc[MatchColorField] is bool matchColor
            ? new EmbeddingSettings(doc.GetString(EmbeddingModelField), matchColor, doc[MatchCropsField] is true)
            : EmbeddingSettings.BeforeMatchColor,
        doc[ErrorField] is IReadOnlyDictionary<string, object?> error
            ? new RecordedError(
                error.GetValueOrDefault(ErrorFunctionField) as string,
                error.GetValueOrDefault(ErrorMessageField) as string,
                error.GetValueOrDefault(ErrorTimeField) as DateTimeOffset?)
            : null,
        doc.GetString(CreationClaimField),
        doc[CreationClaimedAtField] as DateTimeOffset?);

    private static BackfillRun ToBackfillRun(DocumentSnapshot doc) => new(
        doc.GetString(RunIdField),
        ReadStatus<BackfillStatus>(doc),
        doc.GetInt64(TotalLengthField) ?? 0,
        doc.GetInt64(ProcessedLengthField) ?? 0,
        doc.GetInt64(ChunkCountField),
        doc.GetInt64(OutputShapeField));

    private static Dictionary<string, object?> NewBackfillRunFields(long totalLength, string runId) => new()
    {
        [TotalLengthField] = totalLength,
        [ProcessedLengthField] = 0L,
        [StatusField] = StatusName(BackfillStatus.Pending),
        [RunIdField] = runId,
    };

    private static Dictionary<string, object?> PendingChunkFields(string taskId, IReadOnlyList<string> objects) => new()
    {
        [TaskIdField] = taskId,
        [StatusField] = StatusName(BackfillStatus.Pending),
        [ObjectsField] = objects.Cast<object?>().ToArray(),
    };

    private static Dictionary<string, object?> ToFields(DatapointRecord record) => new()
    {
        [PathField] = record.ObjectName,
        [StatusField] = StatusName(record.Status),
        [Md5HashField] = record.Md5Hash,
        [GenerationField] = record.Generation,
        [ReasonField] = record.Reason,
    };

    // A record without a status is one written before records had one: it says why the image was skipped, if anything.
    private static DatapointRecord ToDatapointRecord(string objectName, DocumentSnapshot doc) => new(
        objectName,
        ReadStatus<DatapointStatus>(doc) ?? DatapointStatus.Skipped,
        doc.GetString(Md5HashField),
        doc.GetInt64(GenerationField) ?? 0,
        doc.GetString(ReasonField));

    // A status this version does not know reads as none.
    private static T? ReadStatus<T>(DocumentSnapshot? doc) where T : struct, Enum =>
        doc?.GetString(StatusField) is { } name && StatusNames<T>.Values.TryGetValue(name, out var status) ? status : null;

    /// <summary>Each status's string, from its JsonStringEnumMemberName: one spelling for the documents and for JSON.</summary>
    private static class StatusNames<T> where T : struct, Enum
    {
        public static readonly Dictionary<T, string> Names = Enum.GetValues<T>().ToDictionary(
            status => status,
            status => typeof(T).GetField(status.ToString(), BindingFlags.Public | BindingFlags.Static)!
                .GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name
                ?? throw new InvalidOperationException($"{typeof(T).Name}.{status} names no document value."));

        public static readonly Dictionary<string, T> Values = Names.ToDictionary(pair => pair.Value, pair => pair.Key, StringComparer.Ordinal);
    }
}
