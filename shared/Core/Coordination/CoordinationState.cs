using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Core.Coordination;

/// <summary>
/// Every read and write of the coordination documents goes through here: they are read as typed records
/// (<see cref="IndexMetadata"/>, <see cref="BackfillRun"/>, <see cref="BackfillChunkRecord"/>, <see cref="DatapointRecord"/>)
/// and changed by named transitions, so each rule (exactly-once progress, DONE set once, INDEX_DEPLOYED never taken
/// back, errors recorded) lives in one place. Their fields are named in CoordinationState.Schema.cs only.
/// </summary>
public sealed partial class CoordinationState(IDocumentStore documents, CoordinationDocuments paths, ExtensionOptions options, TimeProvider clock)
{
    // Firestore commits at most 500 writes; leave room.
    private const int WritesPerCommit = 400;

    public CoordinationDocuments Paths => paths;

    /// <summary>The metadata document; null when it does not exist.</summary>
    public async Task<IndexMetadata?> ReadMetadataAsync(CancellationToken cancellationToken) =>
        await documents.GetAsync(paths.Metadata, cancellationToken) is { } doc ? ToIndexMetadata(doc) : null;

    /// <summary>The tasks document: the backfill run; null when no backfill was ever started (or it was reset).</summary>
    public async Task<BackfillRun?> ReadBackfillRunAsync(CancellationToken cancellationToken) =>
        await documents.GetAsync(paths.Tasks, cancellationToken) is { } doc ? ToBackfillRun(doc) : null;

    /// <summary>A backfill chunk's enqueue document; null when it is not recorded.</summary>
    public async Task<BackfillChunkRecord?> ReadBackfillChunkAsync(string taskId, CancellationToken cancellationToken) =>
        await documents.GetAsync(paths.Enqueue(taskId), cancellationToken) is { } doc ? ReadBackfillChunk(doc) : null;

    /// <summary>Whether and where the index can be used, and whether its vectors were made with the running embedding settings.</summary>
    public async Task<IndexAvailability> ReadIndexAvailabilityAsync(CancellationToken cancellationToken)
    {
        var metadata = await ReadMetadataAsync(cancellationToken);
        var availability = await ReadReadinessAsync(metadata, cancellationToken);
        if (availability.Readiness == IndexReadiness.NotCreated)
        {
            return availability;
        }

        var mismatch = EmbeddingSettings.Of(options).MismatchWith(metadata?.EmbeddingSettings ?? EmbeddingSettings.BeforeMatchColor);
        return mismatch is null ? availability : availability with { EmbeddingMismatch = mismatch };
    }

    private async Task<IndexAvailability> ReadReadinessAsync(IndexMetadata? metadata, CancellationToken cancellationToken)
    {
        var status = metadata?.Status;
        if (!options.IndexNeedsBuild)
        {
            return await ReadImmediateAvailabilityAsync(status, cancellationToken);
        }

        if (status == IndexStatus.Deployed
            && metadata is { Index: { } index, IndexEndpoint: { } endpoint, PublicEndpointDomainName: { } domain })
        {
            return new IndexAvailability(IndexReadiness.Deployed, status, new DeployedIndex(index, endpoint, domain));
        }

        if (status is not null)
        {
            return new IndexAvailability(IndexReadiness.Preparing, status, null);
        }

        return await BackfillStartedAsync(cancellationToken)
            ? new IndexAvailability(IndexReadiness.Preparing, null, null)
            : new IndexAvailability(IndexReadiness.NotCreated, null, null);
    }

    /// <summary>
    /// INDEX_BACKEND=firestore: vectors are written to their documents and searched from the first one, so the index
    /// always takes writes and queries (<see cref="IndexAvailability.Deployed"/> is set whatever the status). The readiness
    /// still tells whether a backfill ever started, so the first image of an installation without backfill starts the
    /// one-image backfill that records INDEX_DEPLOYED, as with Vertex AI.
    /// </summary>
    private async Task<IndexAvailability> ReadImmediateAvailabilityAsync(IndexStatus? status, CancellationToken cancellationToken)
    {
        var index = new DeployedIndex(paths.VectorCollection, IndexEndpoint: "", PublicEndpointDomainName: "");
        if (status == IndexStatus.Deployed)
        {
            return new IndexAvailability(IndexReadiness.Deployed, status, index);
        }

        var started = status is not null || await BackfillStartedAsync(cancellationToken);
        return new IndexAvailability(started ? IndexReadiness.Preparing : IndexReadiness.NotCreated, status, index);
    }

    private async Task<bool> BackfillStartedAsync(CancellationToken cancellationToken) =>
        await documents.GetAsync(paths.Tasks, cancellationToken) is not null;

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
            [MatchCropsField] = settings.MatchCrops,
        }, cancellationToken);
    }

    /// <summary>
    /// Forgets the installation: deletes the metadata and tasks documents, so the next backfill plans afresh and its
    /// DONE creates a new index (the claim finds no status). The per-image records and chunk documents below them stay
    /// (Firestore keeps a deleted document's subcollections): the new backfill overwrites them.
    /// </summary>
    public async Task ResetAsync(CancellationToken cancellationToken)
    {
        await documents.DeleteAsync(paths.Tasks, cancellationToken);
        await documents.DeleteAsync(paths.Metadata, cancellationToken);
    }

    private Task MergeMetadataAsync(IReadOnlyDictionary<string, object?> fields, CancellationToken cancellationToken) =>
        documents.SetAsync(paths.Metadata, fields, SetMode.Merge, cancellationToken);

    // ---- The backfill: tasks and enqueue documents ----

    /// <summary>Backfill started: a new run of <paramref name="totalLength"/> images, PENDING, replacing any earlier run.</summary>
    public Task StartBackfillRunAsync(long totalLength, string runId, CancellationToken cancellationToken) =>
        documents.SetAsync(paths.Tasks, NewBackfillRunFields(totalLength, runId), SetMode.Overwrite, cancellationToken);

    /// <summary>
    /// Backfill started by the first image: a one-image run, recorded only when no run exists; false when one does
    /// (exactly one caller wins).
    /// </summary>
    public Task<bool> TryStartFirstBackfillRunAsync(string runId, CancellationToken cancellationToken) =>
        documents.CreateAsync(paths.Tasks, NewBackfillRunFields(1, runId), cancellationToken);

    /// <summary>Records each chunk of a plan as PENDING with its images, in commits Firestore accepts.</summary>
    public async Task RecordPendingChunksAsync(IReadOnlyList<BackfillChunk> chunks, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        foreach (var batch in chunks.Chunk(WritesPerCommit))
        {
            await documents.RunTransactionAsync((tx, _) =>
            {
                foreach (var chunk in batch)
                {
                    tx.Set(paths.Enqueue(chunk.Id), PendingChunkFields(chunk.Id, chunk.Objects), SetMode.Overwrite);
                }

                return Task.FromResult(true);
            }, cancellationToken);
        }
    }

    /// <summary>Marks the run's plan complete: every one of its <paramref name="chunkCount"/> chunks is recorded.</summary>
    public Task RecordPlanCompleteAsync(int chunkCount, CancellationToken cancellationToken) =>
        documents.SetAsync(paths.Tasks, new Dictionary<string, object?> { [ChunkCountField] = (long)chunkCount }, SetMode.Merge, cancellationToken);

    /// <summary>
    /// Marks a chunk PROCESSING before its work starts; false when it was already counted, so a
    /// redelivered task stops at once instead of embedding its images again.
    /// </summary>
    public Task<bool> TryBeginChunkAsync(string taskId, CancellationToken cancellationToken) =>
        documents.RunTransactionAsync(async (tx, ct) =>
        {
            var path = paths.Enqueue(taskId);
            if (await tx.GetAsync(path, ct) is { } chunk && ReadBackfillChunk(chunk).Counted)
            {
                return false;
            }

            tx.Set(path, new Dictionary<string, object?> { [TaskIdField] = taskId, [StatusField] = StatusName(BackfillStatus.Processing) }, SetMode.Merge);
            return true;
        }, cancellationToken);

    /// <summary>
    /// Backfill progress: counts a finished chunk exactly once, however often its task is delivered. The chunk's
    /// status, the progress count, the per-image records and (backfill completed: the last chunk) outputShape and the
    /// switch to DONE commit together. Returns false when the chunk had already been counted.
    /// </summary>
    public Task<bool> CompleteChunkAsync(ChunkOutcome outcome, CancellationToken cancellationToken) =>
        documents.RunTransactionAsync(async (tx, ct) =>
        {
            var enqueuePath = paths.Enqueue(outcome.TaskId);
            if (await tx.GetAsync(enqueuePath, ct) is { } chunk && ReadBackfillChunk(chunk).Counted)
            {
                return false;
            }

            var tasks = await tx.GetAsync(paths.Tasks, ct) is { } doc ? ToBackfillRun(doc) : null;
            var total = tasks?.TotalLength ?? 0;
            var processed = (tasks?.ProcessedLength ?? 0) + outcome.ObjectCount;

            var chunkFields = new Dictionary<string, object?> { [StatusField] = StatusName(outcome.Status) };
            if (outcome.FilePath is not null)
            {
                chunkFields[FilePathField] = outcome.FilePath;
            }

            if (outcome.Error is not null)
            {
                chunkFields[ErrorField] = outcome.Error;
            }

            tx.Set(enqueuePath, chunkFields, SetMode.Merge);

            var tasksFields = new Dictionary<string, object?> { [ProcessedLengthField] = processed };
            if (processed >= total && tasks?.Status != BackfillStatus.Done)
            {
                // createIndexTrigger reacts to the switch to DONE and reads outputShape: both in one commit.
                tx.Set(paths.Metadata, new Dictionary<string, object?> { [OutputShapeField] = (long)outcome.Dimensions }, SetMode.Merge);
                tasksFields[StatusField] = StatusName(BackfillStatus.Done);
            }

            tx.Set(paths.Tasks, tasksFields, SetMode.Merge);
            foreach (var record in outcome.Records)
            {
                tx.Set(paths.Datapoint(record.ObjectName), ToFields(record), SetMode.Overwrite);
            }

            return true;
        }, cancellationToken);

    /// <summary>
    /// The backfill run as <paramref name="change"/> left it when the change is the tasks document turning DONE (the
    /// backfill completed); null for any other change.
    /// </summary>
    public BackfillRun? CompletedBackfill(DocumentChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        if (change.Path != paths.Tasks || change.After is not { } after
            || ReadStatus<BackfillStatus>(after) != BackfillStatus.Done || ReadStatus<BackfillStatus>(change.Before) == BackfillStatus.Done)
        {
            return null;
        }

        return ToBackfillRun(after);
    }

    // ---- The index: the metadata document ----

    /// <summary>
    /// Claims the creation of the index for exactly one caller: the one that finds no index status yet, or a
    /// claim older than <paramref name="staleAfter"/> that never recorded its operation (its holder died
    /// before or while calling CreateIndex). A younger claim without an operation is
    /// <see cref="IndexCreationClaimOutcome.HeldByAnother"/>: its holder may be dead, so the caller must come back.
    /// </summary>
    public Task<IndexCreationClaim> ClaimIndexCreationAsync(TimeSpan staleAfter, CancellationToken cancellationToken) =>
        documents.RunTransactionAsync(async (tx, ct) =>
        {
            var doc = await tx.GetAsync(paths.Metadata, ct);
            var metadata = doc is null ? null : ToIndexMetadata(doc);
            var now = clock.GetUtcNow();
            // Any status, even one this version does not know, means the creation is past its claim.
            if (doc?.GetString(StatusField) is not null)
            {
                if (!metadata!.CreationUnrecorded)
                {
                    return new IndexCreationClaim(IndexCreationClaimOutcome.AlreadyCreated, null);
                }

                var abandoned = metadata.CreationClaimedAt is not { } claimedAt || now - claimedAt > staleAfter;
                if (!abandoned)
                {
                    return new IndexCreationClaim(IndexCreationClaimOutcome.HeldByAnother, null);
                }
            }

            var token = Guid.NewGuid().ToString("N");
            tx.Set(paths.Metadata, new Dictionary<string, object?>
            {
                [StatusField] = StatusName(IndexStatus.Building),
                [CreationClaimedAtField] = now,
                [CreationClaimField] = token,
            }, SetMode.Merge);
            return new IndexCreationClaim(IndexCreationClaimOutcome.Claimed, token);
        }, cancellationToken);

    /// <summary>
    /// Index creation started: records the operation <paramref name="claim"/> started, {status: INDEX_BUILDING,
    /// operation}. False, recording nothing, when the claim was taken over meanwhile (this holder was too slow
    /// and another delivery created the index): the later holder's index is the one used.
    /// </summary>
    public Task<bool> RecordIndexCreationAsync(string claim, string operation, CancellationToken cancellationToken) =>
        documents.RunTransactionAsync(async (tx, ct) =>
        {
            var metadata = await tx.GetAsync(paths.Metadata, ct) is { } doc ? ToIndexMetadata(doc) : null;
            if (metadata?.CreationClaim != claim || metadata.Operation is not null)
            {
                return false;
            }

            tx.Set(paths.Metadata, new Dictionary<string, object?>
            {
                [StatusField] = StatusName(IndexStatus.Building),
                [OperationField] = operation,
            }, SetMode.Merge);
            return true;
        }, cancellationToken);

    /// <summary>
    /// Endpoint recorded: {index, indexEndpoint}, as soon as the endpoint exists, so a redelivered event deploys to it
    /// instead of creating another.
    /// </summary>
    public Task RecordIndexEndpointAsync(string index, string indexEndpoint, CancellationToken cancellationToken) =>
        MergeMetadataAsync(new Dictionary<string, object?> { [IndexField] = index, [IndexEndpointField] = indexEndpoint }, cancellationToken);

    /// <summary>
    /// Records that the index was sent for deployment: {index, indexEndpoint, status: INDEX_DEPLOYING}, unless
    /// the deployment already finished and onIndexDeployed recorded INDEX_DEPLOYED first (a fast deployment's
    /// audit entry can overtake the caller); that status is never taken back.
    /// </summary>
    public Task RecordDeploymentRequestedAsync(string index, string indexEndpoint, CancellationToken cancellationToken) =>
        documents.RunTransactionAsync(async (tx, ct) =>
        {
            var metadata = await tx.GetAsync(paths.Metadata, ct);
            var fields = new Dictionary<string, object?> { [IndexField] = index, [IndexEndpointField] = indexEndpoint };
            if (ReadStatus<IndexStatus>(metadata) != IndexStatus.Deployed)
            {
                fields[StatusField] = StatusName(IndexStatus.Deploying);
            }

            tx.Set(paths.Metadata, fields, SetMode.Merge);
            return true;
        }, cancellationToken);

    /// <summary>Deployed (Vertex AI): {status: INDEX_DEPLOYED, publicEndpointDomainName}, the operation dropped.</summary>
    public Task RecordDeployedAsync(string publicEndpointDomainName, CancellationToken cancellationToken) =>
        RecordDeployedWithAsync(PublicEndpointDomainNameField, publicEndpointDomainName, cancellationToken);

    /// <summary>Deployed (INDEX_BACKEND=firestore, nothing to deploy): {status: INDEX_DEPLOYED, index}, the operation dropped.</summary>
    public Task RecordVectorIndexReadyAsync(string index, CancellationToken cancellationToken) =>
        RecordDeployedWithAsync(IndexField, index, cancellationToken);

    private Task RecordDeployedWithAsync(string field, string value, CancellationToken cancellationToken) =>
        MergeMetadataAsync(new Dictionary<string, object?>
        {
            [StatusField] = StatusName(IndexStatus.Deployed),
            [field] = value,
            [OperationField] = FieldDelete.Value,
        }, cancellationToken);

    /// <summary>Failed: makes an error visible where users look, the metadata document's "error" field.</summary>
    public Task RecordErrorAsync(string functionName, string message, CancellationToken cancellationToken) =>
        MergeMetadataAsync(new Dictionary<string, object?>
        {
            [ErrorField] = new Dictionary<string, object?>
            {
                [ErrorFunctionField] = functionName,
                [ErrorMessageField] = message,
                [ErrorTimeField] = clock.GetUtcNow(),
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

    // ---- The per-image records ----

    public async Task<DatapointRecord?> GetDatapointRecordAsync(string objectName, CancellationToken cancellationToken)
    {
        var doc = await documents.GetAsync(paths.Datapoint(objectName), cancellationToken);
        return doc is null ? null : ToDatapointRecord(objectName, doc);
    }

    /// <summary>
    /// Writes the image's record; true when it is news: no record described this outcome (status) of this content
    /// (generation, MD5) before. A writer that writes an image again after a racing writer wrote the same content
    /// (DatapointSync's ordering rule) gets false, so the image is counted once (ris.images.indexed). One transaction,
    /// so of two writers racing on the same content exactly one gets true.
    /// </summary>
    public Task<bool> SaveDatapointRecordAsync(DatapointRecord record, CancellationToken cancellationToken) =>
        documents.RunTransactionAsync(async (tx, ct) =>
        {
            var path = paths.Datapoint(record.ObjectName);
            var before = await tx.GetAsync(path, ct) is { } doc ? ToDatapointRecord(record.ObjectName, doc) : null;
            tx.Set(path, ToFields(record), SetMode.Overwrite);
            return before is null || before.Status != record.Status || before.Generation != record.Generation || before.Md5Hash != record.Md5Hash;
        }, cancellationToken);

    public Task DeleteDatapointRecordAsync(string objectName, CancellationToken cancellationToken) =>
        documents.DeleteAsync(paths.Datapoint(objectName), cancellationToken);
}

/// <param name="Status">DONE, or FAILED when the chunk ran out of attempts.</param>
/// <param name="ObjectCount">Images in the chunk, embedded or skipped: progress counts images as the original does.</param>
/// <param name="Records">What happened to each image of the chunk.</param>
public sealed record ChunkOutcome(
    string TaskId,
    BackfillStatus Status,
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
