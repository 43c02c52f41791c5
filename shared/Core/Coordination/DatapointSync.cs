using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Embedding;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Core.Coordination;

/// <summary>The payload of a datapointWriteTask task: the original's {operation, imagePath}, plus how often it waited.</summary>
/// <param name="Operation">"update" or "remove".</param>
public sealed record DatapointWrite(string Operation, string ImagePath, int Attempt = 0)
{
    public const string Update = "update";
    public const string Remove = "remove";
}

/// <summary>
/// Brings one image's datapoint in line with the object as it is now in the bucket: embedded and upserted
/// when it exists (unless its content is what was indexed already), removed when it does not. Working
/// from the current object rather than from the event makes duplicate, late and out-of-order events harmless:
/// an overwrite's "deleted" event for the old generation finds the new one and leaves it indexed.
/// </summary>
public sealed partial class DatapointSync(
    IObjectStore objects,
    IImageEmbedder embedder,
    IVectorIndexService vectorIndex,
    CoordinationState state,
    ExtensionOptions options,
    ILogger<DatapointSync> logger)
{
    /// <summary>True when the image's content (by MD5) is the one already indexed: nothing to embed again.</summary>
    public async Task<bool> IsAlreadyIndexedAsync(string objectName, string? md5Hash, CancellationToken cancellationToken)
    {
        var record = await state.GetDatapointRecordAsync(objectName, cancellationToken);
        return record is { Status: DatapointRecord.Indexed } && record.IsCurrentFor(md5Hash);
    }

    public async Task SyncAsync(DeployedIndex index, string objectName, CancellationToken cancellationToken)
    {
        var current = await objects.GetMetadataAsync(options.ImageBucket, objectName, cancellationToken);
        if (current is null)
        {
            await vectorIndex.RemoveDatapointsAsync(index.Index, [objectName], cancellationToken);
            await state.DeleteDatapointRecordAsync(objectName, cancellationToken);
            LogRemoved(logger, objectName);
            return;
        }

        var record = await state.GetDatapointRecordAsync(objectName, cancellationToken);
        if (record is not null && record.IsCurrentFor(current.Md5Hash))
        {
            LogUnchanged(logger, objectName);
            return;
        }

        var rejection = current.Size > options.MaxImageBytes
            ? ImageRejections.TooManyBytes(current.Size, options.MaxImageBytes)
            : null;
        float[]? vector = null;
        if (rejection is null)
        {
            var bytes = await objects.ReadAsync(options.ImageBucket, objectName, cancellationToken);
            var result = (await embedder.EmbedAsync([bytes], cancellationToken))[0];
            vector = result.Vector;
            rejection = result.RejectionReason;
        }

        if (vector is null)
        {
            // An unusable file must not linger in the index under a name whose content changed.
            await vectorIndex.RemoveDatapointsAsync(index.Index, [objectName], cancellationToken);
            var skipped = new DatapointRecord(objectName, DatapointRecord.Skipped, current.Md5Hash, current.Generation, rejection);
            await state.SaveDatapointRecordAsync(skipped, cancellationToken);
            Telemetry.CountImage(skipped);
            LogSkipped(logger, objectName, rejection!);
            return;
        }

        await vectorIndex.UpsertDatapointsAsync(index.Index, [IndexDatapoint.ForImage(objectName, vector)], cancellationToken);
        var indexed = new DatapointRecord(objectName, DatapointRecord.Indexed, current.Md5Hash, current.Generation, null);
        await state.SaveDatapointRecordAsync(indexed, cancellationToken);
        Telemetry.CountImage(indexed);
        LogUpserted(logger, objectName);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Upserted datapoint {ObjectName}")]
    private static partial void LogUpserted(ILogger logger, string objectName);

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed datapoint {ObjectName}: the object no longer exists")]
    private static partial void LogRemoved(ILogger logger, string objectName);

    [LoggerMessage(Level = LogLevel.Information, Message = "Skipped {ObjectName}: its content is already indexed")]
    private static partial void LogUnchanged(ILogger logger, string objectName);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipped {ObjectName}: {Reason}")]
    private static partial void LogSkipped(ILogger logger, string objectName, string reason);
}
