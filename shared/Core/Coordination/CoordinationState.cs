using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Core.Coordination;

/// <summary>
/// Every read and write of the coordination documents goes through here, so each rule
/// (exactly-once progress, DONE set once, errors recorded) lives in one place.
/// </summary>
public sealed class CoordinationState(IDocumentStore documents, CoordinationDocuments paths, ExtensionOptions options, TimeProvider clock)
{
    public CoordinationDocuments Paths => paths;

    /// <summary>The index's readiness, and whether its vectors were made with the running embedding settings.</summary>
    public async Task<IndexState> ReadIndexStateAsync(CancellationToken cancellationToken)
    {
        var metadata = await documents.GetAsync(paths.Metadata, cancellationToken);
        var state = await ReadReadinessAsync(metadata, cancellationToken);
        if (state.Readiness == IndexReadiness.NotCreated)
        {
            return state;
        }

        var mismatch = EmbeddingSettings.Of(options).MismatchWith(ReadEmbeddingSettings(metadata));
        return mismatch is null ? state : state with { EmbeddingMismatch = mismatch };
    }

    /// <summary>
    /// Records in the metadata document what the vectors about to be written are made with (a backfill starts:
    /// every image is embedded with the running settings), so a later change of them is noticed.
    /// </summary>
    public Task RecordEmbeddingSettingsAsync(CancellationToken cancellationToken)
    {
        var settings = EmbeddingSettings.Of(options);
        return MergeMetadataAsync(new Dictionary<string, object?>
        {
            [EmbeddingModelField] = settings.Model,
            [MatchColorField] = settings.MatchColor,
        }, cancellationToken);
    }

    // The metadata document's record of the embedding settings (the fields, named here only).
    public const string EmbeddingModelField = "embeddingModel";
    public const string MatchColorField = "matchColor";

    // No record: the index was made before the settings were recorded, when the model was always fed luma.
    private static EmbeddingSettings ReadEmbeddingSettings(DocumentSnapshot? metadata) =>
        metadata?[MatchColorField] is bool matchColor
            ? new EmbeddingSettings(metadata.GetString(EmbeddingModelField), matchColor)
            : EmbeddingSettings.BeforeMatchColor;

    private async Task<IndexState> ReadReadinessAsync(DocumentSnapshot? metadata, CancellationToken cancellationToken)
    {
        var status = metadata?.GetString("status");
        if (!options.IndexNeedsBuild)
        {
            return await ReadImmediateIndexStateAsync(status, cancellationToken);
        }

        if (status == IndexStatus.Deployed
            && metadata!.GetString("index") is { } index
            && metadata.GetString("indexEndpoint") is { } endpoint
            && metadata.GetString("publicEndpointDomainName") is { } domain)
        {
            return new IndexState(IndexReadiness.Deployed, status, new DeployedIndex(index, endpoint, domain));
        }

        if (status is not null)
        {
            return new IndexState(IndexReadiness.Preparing, status, null);
        }

        var tasks = await documents.GetAsync(paths.Tasks, cancellationToken);
        return tasks is null
            ? new IndexState(IndexReadiness.NotCreated, null, null)
            : new IndexState(IndexReadiness.Preparing, null, null);
    }

    /// <summary>
    /// INDEX_BACKEND=firestore: vectors are written to their documents and searched from the first one, so the index
    /// always takes writes and queries (<see cref="IndexState.Deployed"/> is set whatever the status). The readiness
    /// still tells whether a backfill ever started, so the first image of an installation without backfill starts the
    /// one-image backfill that records INDEX_DEPLOYED, as with Vertex AI.
    /// </summary>
    private async Task<IndexState> ReadImmediateIndexStateAsync(string? status, CancellationToken cancellationToken)
    {
        var index = new DeployedIndex(paths.VectorCollection, IndexEndpoint: "", PublicEndpointDomainName: "");
        if (status == IndexStatus.Deployed)
        {
            return new IndexState(IndexReadiness.Deployed, status, index);
        }

        var started = status is not null || await documents.GetAsync(paths.Tasks, cancellationToken) is not null;
        return new IndexState(started ? IndexReadiness.Preparing : IndexReadiness.NotCreated, status, index);
    }

    public Task<DocumentSnapshot?> GetMetadataAsync(CancellationToken cancellationToken) =>
        documents.GetAsync(paths.Metadata, cancellationToken);

    public Task<DocumentSnapshot?> GetTasksAsync(CancellationToken cancellationToken) =>
        documents.GetAsync(paths.Tasks, cancellationToken);

    public Task MergeMetadataAsync(IReadOnlyDictionary<string, object?> fields, CancellationToken cancellationToken) =>
        documents.SetAsync(paths.Metadata, fields, SetMode.Merge, cancellationToken);

    /// <summary>
    /// Claims the creation of the index for exactly one caller: the one that finds no index status yet, or a
    /// claim older than <paramref name="staleAfter"/> that never recorded its operation (its holder died
    /// before or while calling CreateIndex). A younger claim without an operation is
    /// <see cref="IndexCreationClaimOutcome.HeldByAnother"/>: its holder may be dead, so the caller must come back.
    /// </summary>
    public Task<IndexCreationClaim> ClaimIndexCreationAsync(TimeSpan staleAfter, CancellationToken cancellationToken) =>
        documents.RunTransactionAsync(async (tx, ct) =>
        {
            var metadata = await tx.GetAsync(paths.Metadata, ct);
            var now = clock.GetUtcNow();
            if (metadata?.GetString("status") is not null)
            {
                var unrecorded = metadata.GetString("status") == IndexStatus.Building && metadata.GetString("operation") is null;
                if (!unrecorded)
                {
                    return new IndexCreationClaim(IndexCreationClaimOutcome.AlreadyCreated, null);
                }

                var abandoned = metadata["indexCreationClaimedAt"] is not DateTimeOffset claimedAt || now - claimedAt > staleAfter;
                if (!abandoned)
                {
                    return new IndexCreationClaim(IndexCreationClaimOutcome.HeldByAnother, null);
                }
            }

            var token = Guid.NewGuid().ToString("N");
            tx.Set(paths.Metadata, new Dictionary<string, object?>
            {
                ["status"] = IndexStatus.Building,
                ["indexCreationClaimedAt"] = now,
                ["indexCreationClaim"] = token,
            }, SetMode.Merge);
            return new IndexCreationClaim(IndexCreationClaimOutcome.Claimed, token);
        }, cancellationToken);

    /// <summary>
    /// Records the operation of the index creation <paramref name="claim"/> started: {status: INDEX_BUILDING,
    /// operation}. False, recording nothing, when the claim was taken over meanwhile (this holder was too slow
    /// and another delivery created the index): the later holder's index is the one used.
    /// </summary>
    public Task<bool> RecordIndexCreationAsync(string claim, string operation, CancellationToken cancellationToken) =>
        documents.RunTransactionAsync(async (tx, ct) =>
        {
            var metadata = await tx.GetAsync(paths.Metadata, ct);
            if (metadata?.GetString("indexCreationClaim") != claim || metadata.GetString("operation") is not null)
            {
                return false;
            }

            tx.Set(paths.Metadata, new Dictionary<string, object?>
            {
                ["status"] = IndexStatus.Building,
                ["operation"] = operation,
            }, SetMode.Merge);
            return true;
        }, cancellationToken);

    /// <summary>
    /// Records that the index was sent for deployment: {index, indexEndpoint, status: INDEX_DEPLOYING}, unless
    /// the deployment already finished and onIndexDeployed recorded INDEX_DEPLOYED first (a fast deployment's
    /// audit entry can overtake the caller); that status is never taken back.
    /// </summary>
    public Task RecordDeploymentRequestedAsync(string index, string indexEndpoint, CancellationToken cancellationToken) =>
        documents.RunTransactionAsync(async (tx, ct) =>
        {
            var metadata = await tx.GetAsync(paths.Metadata, ct);
            var fields = new Dictionary<string, object?> { ["index"] = index, ["indexEndpoint"] = indexEndpoint };
            if (metadata?.GetString("status") != IndexStatus.Deployed)
            {
                fields["status"] = IndexStatus.Deploying;
            }

            tx.Set(paths.Metadata, fields, SetMode.Merge);
            return true;
        }, cancellationToken);

    /// <summary>Makes an error visible where users look: the metadata document's "error" field.</summary>
    public Task RecordErrorAsync(string functionName, string message, CancellationToken cancellationToken) =>
        MergeMetadataAsync(new Dictionary<string, object?>
        {
            ["error"] = new Dictionary<string, object?>
            {
                ["function"] = functionName,
                ["message"] = message,
                ["time"] = clock.GetUtcNow(),
            },
        }, cancellationToken);

    /// <summary>
    /// Runs <paramref name="call"/> to a service; a <see cref="ServiceException"/> that outlived the transport's retries
    /// of transient faults (a quota, a permission, an outage) is recorded in the metadata document's "error" as
    /// "{what} failed: {status and message}" and thrown again, so the delivery is retried while users see why.
    /// </summary>
    public async Task<T> RecordingFailureAsync<T>(string functionName, string what, Func<Task<T>> call, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        try
        {
            return await call();
        }
        catch (ServiceException e)
        {
            await RecordErrorAsync(functionName, $"{what} failed: {e.Message}. The event is delivered again; fix the cause if it persists.", cancellationToken);
            throw;
        }
    }

    public async Task<DatapointRecord?> GetDatapointRecordAsync(string objectName, CancellationToken cancellationToken)
    {
        var doc = await documents.GetAsync(paths.Datapoint(objectName), cancellationToken);
        return doc is null ? null : ToRecord(objectName, doc);
    }

    public Task SaveDatapointRecordAsync(DatapointRecord record, CancellationToken cancellationToken) =>
        documents.SetAsync(paths.Datapoint(record.ObjectName), ToFields(record), SetMode.Overwrite, cancellationToken);

    public Task DeleteDatapointRecordAsync(string objectName, CancellationToken cancellationToken) =>
        documents.DeleteAsync(paths.Datapoint(objectName), cancellationToken);

    /// <summary>
    /// Marks a chunk PROCESSING before its work starts; false when it was already counted, so a
    /// redelivered task stops at once instead of embedding its images again.
    /// </summary>
    public Task<bool> TryBeginChunkAsync(string taskId, CancellationToken cancellationToken) =>
        documents.RunTransactionAsync(async (tx, ct) =>
        {
            var path = paths.Enqueue(taskId);
            var chunk = await tx.GetAsync(path, ct);
            if (chunk?.GetString("status") is BackfillStatus.Done or BackfillStatus.Failed)
            {
                return false;
            }

            tx.Set(path, new Dictionary<string, object?> { ["taskId"] = taskId, ["status"] = BackfillStatus.Processing }, SetMode.Merge);
            return true;
        }, cancellationToken);

    /// <summary>
    /// Counts a finished backfill chunk exactly once, however often its task is delivered: the chunk's
    /// status, the progress count, the per-image records and (for the last chunk) outputShape and the
    /// switch to DONE commit together. Returns false when the chunk had already been counted.
    /// </summary>
    public Task<bool> CompleteChunkAsync(ChunkOutcome outcome, CancellationToken cancellationToken) =>
        documents.RunTransactionAsync(async (tx, ct) =>
        {
            var enqueuePath = paths.Enqueue(outcome.TaskId);
            var chunk = await tx.GetAsync(enqueuePath, ct);
            if (chunk?.GetString("status") is BackfillStatus.Done or BackfillStatus.Failed)
            {
                return false;
            }

            var tasks = await tx.GetAsync(paths.Tasks, ct);
            var total = tasks?.GetInt64("totalLength") ?? 0;
            var processed = (tasks?.GetInt64("processedLength") ?? 0) + outcome.ObjectCount;

            var chunkFields = new Dictionary<string, object?> { ["status"] = outcome.Status };
            if (outcome.FilePath is not null)
            {
                chunkFields["filePath"] = outcome.FilePath;
            }

            if (outcome.Error is not null)
            {
                chunkFields["error"] = outcome.Error;
            }

            tx.Set(enqueuePath, chunkFields, SetMode.Merge);

            var tasksFields = new Dictionary<string, object?> { ["processedLength"] = processed };
            if (processed >= total && tasks?.GetString("status") != BackfillStatus.Done)
            {
                // createIndexTrigger reacts to the switch to DONE and reads outputShape: both in one commit.
                tx.Set(paths.Metadata, new Dictionary<string, object?> { ["outputShape"] = (long)outcome.Dimensions }, SetMode.Merge);
                tasksFields["status"] = BackfillStatus.Done;
            }

            tx.Set(paths.Tasks, tasksFields, SetMode.Merge);
            foreach (var record in outcome.Records)
            {
                tx.Set(paths.Datapoint(record.ObjectName), ToFields(record), SetMode.Overwrite);
            }

            return true;
        }, cancellationToken);

    private static Dictionary<string, object?> ToFields(DatapointRecord record) => new()
    {
        ["path"] = record.ObjectName,
        ["status"] = record.Status,
        ["md5Hash"] = record.Md5Hash,
        ["generation"] = record.Generation,
        ["reason"] = record.Reason,
    };

    /// <summary>A per-image record read from a listing of <see cref="CoordinationDocuments.Datapoints"/>.</summary>
    public static DatapointRecord ReadDatapointRecord(DocumentSnapshot doc) =>
        ToRecord(doc.GetString("path") ?? Uri.UnescapeDataString(doc.Path[(doc.Path.LastIndexOf('/') + 1)..]), doc);

    /// <summary>The status (DONE, FAILED, ...) and error of a backfill chunk read from a listing of <see cref="CoordinationDocuments.Enqueues"/>.</summary>
    public static (string? Status, string? Error) ReadChunk(DocumentSnapshot doc) => (doc.GetString("status"), doc.GetString("error"));

    private static DatapointRecord ToRecord(string objectName, DocumentSnapshot doc) => new(
        objectName,
        doc.GetString("status") ?? DatapointRecord.Skipped,
        doc.GetString("md5Hash"),
        doc.GetInt64("generation") ?? 0,
        doc.GetString("reason"));
}

/// <param name="Status">DONE, or FAILED when the chunk ran out of attempts.</param>
/// <param name="ObjectCount">Images in the chunk, embedded or skipped: progress counts images as the original does.</param>
/// <param name="Records">What happened to each image of the chunk.</param>
public sealed record ChunkOutcome(
    string TaskId,
    string Status,
    int ObjectCount,
    int Dimensions,
    string? FilePath,
    string? Error,
    IReadOnlyList<DatapointRecord> Records);

/// <summary>What <see cref="CoordinationState.ClaimIndexCreationAsync"/> found, and the claim's token when it was taken.</summary>
public sealed record IndexCreationClaim(IndexCreationClaimOutcome Outcome, string? Token);

public enum IndexCreationClaimOutcome
{
    /// <summary>The caller holds the claim and must create the index and record its operation.</summary>
    Claimed,

    /// <summary>The creation's operation is recorded (or the index is further along): nothing to do.</summary>
    AlreadyCreated,

    /// <summary>Another delivery claimed it recently and has not recorded an operation yet.</summary>
    HeldByAnother,
}
