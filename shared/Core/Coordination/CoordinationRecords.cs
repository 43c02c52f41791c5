using System.Text.Json.Serialization;

namespace ReverseImageSearch.Core.Coordination;

// The coordination documents as typed records. Their shape in Firestore (field names, status strings, types) is the
// original extension's and is read and written only by CoordinationState (CoordinationState.Schema.cs). A status's
// string in the documents is the JsonStringEnumMemberName of its member: the same string in JSON answers.

/// <summary>The metadata document's status: the index's way from creation to deployment (the original's values).</summary>
public enum IndexStatus
{
    [JsonStringEnumMemberName("INDEX_BUILDING")]
    Building,

    [JsonStringEnumMemberName("INDEX_DEPLOYING")]
    Deploying,

    [JsonStringEnumMemberName("INDEX_DEPLOYED")]
    Deployed,
}

/// <summary>The status of the tasks document (the backfill run) and of each chunk's enqueue document (the original's values).</summary>
public enum BackfillStatus
{
    [JsonStringEnumMemberName("PENDING")]
    Pending,

    [JsonStringEnumMemberName("PROCESSING")]
    Processing,

    [JsonStringEnumMemberName("DONE")]
    Done,

    /// <summary>A chunk that exhausted its attempts: counted as processed so the others can finish; its error is in the document.</summary>
    [JsonStringEnumMemberName("FAILED")]
    Failed,
}

/// <summary>What became of one image: its datapoint is indexed, or it was skipped with a reason.</summary>
public enum DatapointStatus
{
    [JsonStringEnumMemberName("INDEXED")]
    Indexed,

    [JsonStringEnumMemberName("SKIPPED")]
    Skipped,
}

/// <summary>
/// The metadata document, <c>_ext-{instance}/metadata</c>: where the index is on its way to deployment, and what its
/// vectors were made with. Written only by <see cref="CoordinationState"/>'s transitions.
/// </summary>
/// <param name="Status">Null before the index creation is claimed (or for a status this version does not know).</param>
/// <param name="Operation">The index creation's long-running operation, while the index builds.</param>
/// <param name="Index">The index resource (INDEX_BACKEND=firestore: the vector index).</param>
/// <param name="IndexEndpoint">The endpoint the index is deployed (or being deployed) to.</param>
/// <param name="PublicEndpointDomainName">The deployed endpoint's query host.</param>
/// <param name="OutputShape">The vectors' dimensions, recorded when the backfill completes.</param>
/// <param name="EmbeddingSettings">What the index's vectors are made with; <see cref="EmbeddingSettings.BeforeMatchColor"/>
/// when not recorded (an index made before the settings were recorded).</param>
/// <param name="Error">The last failure recorded for users to see.</param>
/// <param name="CreationClaim">The token of the index creation's claim.</param>
/// <param name="CreationClaimedAt">When the index creation was claimed.</param>
public sealed record IndexMetadata(
    IndexStatus? Status,
    string? Operation,
    string? Index,
    string? IndexEndpoint,
    string? PublicEndpointDomainName,
    long? OutputShape,
    EmbeddingSettings EmbeddingSettings,
    RecordedError? Error,
    string? CreationClaim,
    DateTimeOffset? CreationClaimedAt)
{
    /// <summary>The creation is claimed but its operation is not recorded yet (its holder works on it, or died).</summary>
    public bool CreationUnrecorded => Status == IndexStatus.Building && Operation is null;
}

/// <summary>A failure recorded in the metadata document's error field, where users look.</summary>
public sealed record RecordedError(string? Function, string? Message, DateTimeOffset? Time);

/// <summary>The tasks document, <c>_ext-{instance}/tasks</c>: the backfill run and its progress.</summary>
/// <param name="RunId">The install task (or first image) that planned the backfill.</param>
/// <param name="Status">PENDING while chunks run, DONE once every image is counted.</param>
/// <param name="TotalLength">Images in the plan.</param>
/// <param name="ProcessedLength">Images counted so far (embedded, skipped or in a failed chunk).</param>
/// <param name="ChunkCount">Set once every chunk of the plan is recorded: the plan is complete.</param>
/// <param name="OutputShape">The vectors' dimensions as an older version recorded them here (now in the metadata document).</param>
public sealed record BackfillRun(string? RunId, BackfillStatus? Status, long TotalLength, long ProcessedLength, long? ChunkCount, long? OutputShape);

/// <summary>One backfill chunk's enqueue document, <c>_ext-{instance}/tasks/enqueues/{taskId}</c>.</summary>
/// <param name="FilePath">The datapoints file the chunk wrote (INDEX_BACKEND=vertex).</param>
/// <param name="Error">Why the chunk failed, when it ran out of attempts.</param>
public sealed record BackfillChunkRecord(string TaskId, BackfillStatus? Status, IReadOnlyList<string> Objects, string? FilePath, string? Error)
{
    /// <summary>Counted in the progress already (done, or failed for good): its work is not done again.</summary>
    public bool Counted => Status is BackfillStatus.Done or BackfillStatus.Failed;
}

/// <summary>
/// What is known of one image's datapoint (<c>_ext-{instance}/metadata/datapoints/{escaped object name}</c>): the
/// content last indexed, or why it was skipped.
/// </summary>
public sealed record DatapointRecord(string ObjectName, DatapointStatus Status, string? Md5Hash, long Generation, string? Reason)
{
    public bool IsCurrentFor(string? md5Hash) => md5Hash is not null && Md5Hash == md5Hash;
}
