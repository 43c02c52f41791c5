using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Core.Coordination;

/// <summary>The payload of a backfillTask task (the original's shape).</summary>
/// <param name="Id">The chunk's task id, ext-{instance}-task{n}.</param>
public sealed record BackfillChunk(string Id, string Bucket, IReadOnlyList<string> Objects);

/// <summary>
/// Starts a backfill: records the plan in the tasks and enqueues documents and enqueues every chunk at
/// once (the queue's rate limit bounds concurrency), so a failing chunk never holds up the others.
/// Starting again with the same run id resumes instead of resetting the progress.
/// </summary>
public sealed partial class BackfillCoordinator(
    CoordinationState state,
    IObjectStore objects,
    ITaskQueue queue,
    CoordinationDocuments paths,
    ImageScope scope,
    ExtensionOptions options,
    ILogger<BackfillCoordinator> logger)
{
    public const string BackfillTaskFunction = "backfillTask";

    /// <summary>
    /// Plans and enqueues the backfill of <paramref name="objectNames"/> under run <paramref name="runId"/>. A run whose
    /// plan is recorded keeps it: a redelivered trigger lists a folder that may have changed since, and chunks re-made
    /// from that listing would not add up to the recorded totalLength (counting past it, or never reaching DONE).
    /// Images added or removed since are the storage events' work.
    /// </summary>
    public async Task StartAsync(IReadOnlyList<string> objectNames, string runId, CancellationToken cancellationToken)
    {
        var run = await state.ReadBackfillRunAsync(cancellationToken);
        var recorded = run?.RunId == runId ? await RecordedPlanAsync(run, cancellationToken) : null;
        var plan = recorded ?? await RecordPlanAsync(objectNames, runId, cancellationToken);
        LogPlanned(logger, plan.Sum(c => c.Chunk.Objects.Count), plan.Count, recorded is not null);

        foreach (var (chunk, counted) in plan)
        {
            if (!counted)
            {
                await queue.EnqueueAsync(BackfillTaskFunction, chunk, new TaskOptions(Id: DeduplicationId(runId, chunk.Id)), cancellationToken);
            }
        }
    }

    /// <summary>
    /// Records the tasks document, then every chunk's enqueue document, then the chunk count that marks the plan
    /// complete. No chunk is enqueued before that mark, so a run that died while planning has counted nothing and is
    /// planned again from a new listing.
    /// </summary>
    private async Task<List<(BackfillChunk Chunk, bool Counted)>> RecordPlanAsync(IReadOnlyList<string> objectNames, string runId, CancellationToken cancellationToken)
    {
        var chunks = objectNames.Chunk(options.BatchSize)
            .Select((objects, i) => new BackfillChunk(paths.BackfillTaskId(i + 1), options.ImageBucket, objects))
            .ToList();
        // Every image is embedded again with the running settings: the index records them first.
        await state.RecordEmbeddingSettingsAsync(cancellationToken);
        await DeleteLeftoverDatapointsAsync(cancellationToken);
        await state.StartBackfillRunAsync(objectNames.Count, runId, cancellationToken);
        await state.RecordPendingChunksAsync(chunks, cancellationToken);
        await state.RecordPlanCompleteAsync(chunks.Count, cancellationToken);
        return chunks.Select(c => (c, false)).ToList();
    }

    /// <summary>The chunks a complete recorded plan holds, each with whether it is counted; null when the plan is incomplete.</summary>
    private async Task<List<(BackfillChunk Chunk, bool Counted)>?> RecordedPlanAsync(BackfillRun run, CancellationToken cancellationToken)
    {
        if (run.ChunkCount is not { } count)
        {
            return null;
        }

        var plan = new List<(BackfillChunk, bool)>((int)count);
        for (var n = 1; n <= count; n++)
        {
            var id = paths.BackfillTaskId(n);
            if (await state.ReadBackfillChunkAsync(id, cancellationToken) is not { } chunk)
            {
                return null;
            }

            plan.Add((new BackfillChunk(id, options.ImageBucket, chunk.Objects), chunk.Counted));
        }

        return plan;
    }

    /// <summary>The names of this instance's images in the bucket now (IMG_PATH, images only), in listing order.</summary>
    public async Task<List<string>> ListImagesAsync(CancellationToken cancellationToken)
    {
        var images = new List<string>();
        await foreach (var stored in objects.ListAsync(options.ImageBucket, scope.Prefix, cancellationToken))
        {
            if (scope.Contains(stored.Bucket, stored.Name, stored.ContentType))
            {
                images.Add(stored.Name);
            }
        }

        return images;
    }

    /// <summary>
    /// With no backfill and no index, the first uploaded image starts the backfill that creates the index: of that image
    /// alone with DO_BACKFILL=false; with DO_BACKFILL=true, of every image in the bucket, as the install task would plan
    /// it, because an upload handled before the install task recorded its run wins this race and the install task then
    /// resumes the run it finds (a one-image run would leave every image already there unindexed). Exactly one caller
    /// wins (the tasks document is created only if absent); false for the others.
    /// </summary>
    public async Task<bool> TryStartFirstIndexAsync(string objectName, string runId, CancellationToken cancellationToken)
    {
        // Before the tasks document exists, so no reader finds a started index without its settings (a loser of the
        // race writes the same settings again).
        await state.RecordEmbeddingSettingsAsync(cancellationToken);
        if (!await state.TryStartFirstBackfillRunAsync(runId, cancellationToken))
        {
            return false;
        }

        var images = options.DoBackfill ? await ListImagesAsync(cancellationToken) : [];
        await StartAsync(images.Count > 0 ? images : [objectName], runId, cancellationToken);
        return true;
    }

    // A previous installation may have left datapoint files; the new index must be built from this run's only.
    private async Task DeleteLeftoverDatapointsAsync(CancellationToken cancellationToken)
    {
        var prefix = ExtensionOptions.DatapointsFolder + "/";
        await foreach (var leftover in objects.ListAsync(options.EmbeddingsBucket, prefix, cancellationToken))
        {
            await objects.DeleteAsync(options.EmbeddingsBucket, leftover.Name, cancellationToken);
        }
    }

    // The run id keeps a later backfill's tasks from colliding with names the queue still remembers.
    private static string DeduplicationId(string runId, string taskId) => TaskIds.Hashed("backfill-", runId + "/" + taskId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Backfill of {ImageCount} images in {ChunkCount} chunks (resuming: {Resuming})")]
    private static partial void LogPlanned(ILogger logger, int imageCount, int chunkCount, bool resuming);
}
