using System.Text.Json;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

/// <summary>
/// backfillTrigger (task queue; runs on every install): lists the images already in the bucket and
/// enqueues every chunk of BATCH_SIZE at once for backfillTask. What an earlier install left decides first
/// (<see cref="InstallationCheck"/>): a finished backfill is kept, one under way (or this task's redelivery) is
/// resumed, and a recorded index that no longer exists resets the documents so that everything starts over.
/// </summary>
public sealed partial class BackfillTrigger(
    BackfillCoordinator backfill,
    InstallationCheck installation,
    ImageScope scope,
    ExtensionOptions options,
    ILogger<BackfillTrigger> logger) : ITaskFunction
{
    public async Task HandleAsync(TaskDelivery task, CancellationToken cancellationToken)
    {
        var request = task.Data.ValueKind == JsonValueKind.Object
            ? task.Data.Deserialize<BackfillTriggerRequest>(CoreJson.Options) ?? new BackfillTriggerRequest()
            : new BackfillTriggerRequest();
        var runId = task.TaskName ?? Guid.NewGuid().ToString("N");

        if (request.ForceCreateIndex && request.Object is { } single)
        {
            // Only ever the first backfill: a running one or an existing index is left alone.
            var started = await backfill.TryStartFirstIndexAsync(single, runId, cancellationToken);
            LogForcedIndex(logger, single, started);
            return;
        }

        var plan = await installation.PlanAsync(cancellationToken);
        if (plan.Action == InstallAction.Keep)
        {
            LogBackfillKept(logger);
            return;
        }

        if (!options.DoBackfill)
        {
            LogBackfillDisabled(logger);
            return;
        }

        var images = await backfill.ListImagesAsync(cancellationToken);
        if (images.Count == 0)
        {
            LogNoImages(logger, options.ImageBucket, scope.Prefix);
            return;
        }

        await backfill.StartAsync(images, plan.RunId ?? runId, cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "The backfill of an earlier install finished; it is kept (new images are indexed as they arrive).")]
    private static partial void LogBackfillKept(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Index creation from {ObjectName} requested (started: {Started})")]
    private static partial void LogForcedIndex(ILogger logger, string objectName, bool started);

    [LoggerMessage(Level = LogLevel.Information, Message = "Backfill is disabled; the index will be created from the first image added.")]
    private static partial void LogBackfillDisabled(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "No images found in gs://{Bucket}/{Prefix}; upload images to index them.")]
    private static partial void LogNoImages(ILogger logger, string bucket, string prefix);
}

/// <summary>The original's optional payload: force the index creation from one object.</summary>
public sealed record BackfillTriggerRequest(bool ForceCreateIndex = false, string? Object = null);
