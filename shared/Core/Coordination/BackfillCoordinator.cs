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
    IDocumentStore documents,
    CoordinationState state,
    IObjectStore objects,
    ITaskQueue queue,
    CoordinationDocuments paths,
    ExtensionOptions options,
    ILogger<BackfillCoordinator> logger)
{
    public const string BackfillTaskFunction = "backfillTask";

    // Firestore commits at most 500 writes; leave room.
    private const int WritesPerCommit = 400;

    /// <summary>Plans and enqueues the backfill of <paramref name="objectNames"/> under run <paramref name="runId"/>.</summary>
    public async Task StartAsync(IReadOnlyList<string> objectNames, string runId, CancellationToken cancellationToken)
    {
        var chunks = objectNames.Chunk(options.BatchSize).ToArray();
        var tasks = await documents.GetAsync(paths.Tasks, cancellationToken);
        var resuming = tasks?.GetString("runId") == runId;
        if (!resuming)
        {
            // Every image is embedded again with the running settings: the index records them first.
            await state.RecordEmbeddingSettingsAsync(cancellationToken);
            await DeleteLeftoverDatapointsAsync(cancellationToken);
            await documents.SetAsync(paths.Tasks, NewTasksDocument(objectNames.Count, runId), SetMode.Overwrite, cancellationToken);
        }

        LogPlanned(logger, objectNames.Count, chunks.Length, resuming);
        var pending = new List<BackfillChunk>(chunks.Length);
        for (var i = 0; i < chunks.Length; i++)
        {
            var chunk = new BackfillChunk(paths.BackfillTaskId(i + 1), options.ImageBucket, chunks[i]);
            if (resuming && await IsCountedAsync(chunk.Id, cancellationToken))
            {
                continue;
            }

            pending.Add(chunk);
        }

        foreach (var batch in pending.Chunk(WritesPerCommit))
        {
            await documents.RunTransactionAsync((tx, _) =>
            {
                foreach (var chunk in batch)
                {
                    tx.Set(paths.Enqueue(chunk.Id), new Dictionary<string, object?>
                    {
                        ["taskId"] = chunk.Id,
                        ["status"] = BackfillStatus.Pending,
                        ["objects"] = chunk.Objects.Cast<object?>().ToArray(),
                    }, SetMode.Overwrite);
                }

                return Task.FromResult(true);
            }, cancellationToken);
        }

        foreach (var chunk in pending)
        {
            await queue.EnqueueAsync(BackfillTaskFunction, chunk, new TaskOptions(Id: DeduplicationId(runId, chunk.Id)), cancellationToken);
        }
    }

    /// <summary>
    /// With no backfill and no index, the first uploaded image starts a one-image backfill that creates the
    /// index. Exactly one caller wins (the tasks document is created only if absent); false for the others.
    /// </summary>
    public async Task<bool> TryStartFirstIndexAsync(string objectName, string runId, CancellationToken cancellationToken)
    {
        // Before the tasks document exists, so no reader finds a started index without its settings (a loser of the
        // race writes the same settings again).
        await state.RecordEmbeddingSettingsAsync(cancellationToken);
        if (!await documents.CreateAsync(paths.Tasks, NewTasksDocument(1, runId), cancellationToken))
        {
            return false;
        }

        await DeleteLeftoverDatapointsAsync(cancellationToken);
        await StartAsync([objectName], runId, cancellationToken);
        return true;
    }

    private static Dictionary<string, object?> NewTasksDocument(int totalLength, string runId) => new()
    {
        ["totalLength"] = (long)totalLength,
        ["processedLength"] = 0L,
        ["status"] = BackfillStatus.Pending,
        ["runId"] = runId,
    };

    private async Task<bool> IsCountedAsync(string taskId, CancellationToken cancellationToken)
    {
        var chunk = await documents.GetAsync(paths.Enqueue(taskId), cancellationToken);
        return chunk?.GetString("status") is BackfillStatus.Done or BackfillStatus.Failed;
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
