using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Core.Coordination;

/// <summary>
/// The one readiness gate for datapoint writes: passes when the index is deployed; otherwise arranges for
/// the write to happen later (a datapointWriteTask after PENDING_WRITE_RETRY_SECONDS), and when no index
/// exists at all lets the first image start the one that will.
/// </summary>
public sealed partial class IndexGate(
    CoordinationState state,
    BackfillCoordinator backfill,
    ITaskQueue queue,
    ExtensionOptions options,
    ILogger<IndexGate> logger)
{
    public const string DatapointWriteTaskFunction = "datapointWriteTask";

    /// <summary>
    /// The deployed index (with INDEX_BACKEND=firestore, the vector collection as soon as anything started), or
    /// null when the write was deferred (or needs nothing).
    /// </summary>
    public async Task<DeployedIndex?> PassOrDeferAsync(DatapointWrite write, CancellationToken cancellationToken)
    {
        var index = await state.ReadIndexAvailabilityAsync(cancellationToken);
        switch (index.Readiness)
        {
            case var _ when index.EmbeddingMismatch is { } mismatch:
                // A vector made with other settings than the index's would be nonsense beside them: the write waits
                // until the settings agree again (set back, or a new installation's backfill).
                LogMismatch(logger, write.Operation, write.ImagePath, mismatch);
                break;

            case IndexReadiness.Deployed:
                return index.Deployed;

            case IndexReadiness.NotCreated when write.Operation == DatapointWrite.Remove:
                LogNothingToRemove(logger, write.ImagePath);
                return null;

            case IndexReadiness.Preparing when index.Deployed is { } immediate:
                // INDEX_BACKEND=firestore: a vector is searchable once written, during a backfill too; nothing waits.
                return immediate;

            case IndexReadiness.NotCreated:
                var runId = TaskIds.Hashed("first-", write.ImagePath);
                if (await backfill.TryStartFirstIndexAsync(write.ImagePath, runId, cancellationToken))
                {
                    LogFirstIndex(logger, write.ImagePath);
                    return null;
                }

                break;
        }

        var later = write with { Attempt = write.Attempt + 1 };
        var enqueued = await queue.EnqueueAsync(
            DatapointWriteTaskFunction,
            later,
            new TaskOptions(options.PendingWriteRetryDelay, TaskIds.Hashed("write-", $"{later.Operation}/{later.ImagePath}/{later.Attempt}")),
            cancellationToken);
        LogDeferred(logger, write.Operation, write.ImagePath, index.Describe(), options.PendingWriteRetryDelay, enqueued);
        return null;
    }

    /// <summary>
    /// A write this function cannot do itself because it needs a vector and only the functions that embed carry the
    /// embedder: a datapointWriteTask does it now, from the object as it is then. One task per generation.
    /// </summary>
    public async Task HandOverAsync(DatapointWrite write, long generation, CancellationToken cancellationToken)
    {
        var enqueued = await queue.EnqueueAsync(
            DatapointWriteTaskFunction,
            write,
            new TaskOptions(Id: TaskIds.Hashed("handover-", $"{write.Operation}/{write.ImagePath}/{generation}")),
            cancellationToken);
        LogHandedOver(logger, write.Operation, write.ImagePath, enqueued);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Handed the {Operation} of {ObjectName} to datapointWriteTask: it needs the embedder (new task: {Enqueued})")]
    private static partial void LogHandedOver(ILogger logger, string operation, string objectName, bool enqueued);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Operation} of {ObjectName} waits: {Mismatch}")]
    private static partial void LogMismatch(ILogger logger, string operation, string objectName, string mismatch);

    [LoggerMessage(Level = LogLevel.Information, Message = "No index yet: {ObjectName} starts the backfill that creates it")]
    private static partial void LogFirstIndex(ILogger logger, string objectName);

    [LoggerMessage(Level = LogLevel.Information, Message = "No index yet: nothing to remove for {ObjectName}")]
    private static partial void LogNothingToRemove(ILogger logger, string objectName);

    [LoggerMessage(Level = LogLevel.Information, Message = "Deferred {Operation} of {ObjectName}: {Reason}; trying again in {Delay} (new task: {Enqueued})")]
    private static partial void LogDeferred(ILogger logger, string operation, string objectName, string reason, TimeSpan delay, bool enqueued);
}
