using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Configuration;
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
/// <remarks>
/// The one rule that orders writes to the index: a writer reads the object again after its write, and when the
/// object is no longer the generation it wrote from (replaced, deleted or created meanwhile), it writes again from
/// what is there now. Another handler of the same object may have run completely between this writer's read and its
/// write (a finalize racing a delete, a backfill chunk racing an overwrite); its write then came first and this
/// writer's older one must not be the last. A change after the second look has an event of its own, whose handler
/// reads after the change and so writes after this writer. An image's write is its whole set of datapoints: its own
/// and its views' (MATCH_CROPS) upserted together and the views it no longer has removed, all before the second look;
/// removing an image removes every id it may have had (<see cref="ImageViews.AllIds"/>).
/// </remarks>
/// <param name="embedder">Null in the functions that do not embed (streamRemoveDatapoint): a write that needs a vector is
/// then handed over to datapointWriteTask (<see cref="IndexGate.HandOverAsync"/>), which reads the object again.</param>
public sealed partial class DatapointSync(
    IObjectStore objects,
    IVectorIndexService vectorIndex,
    CoordinationState state,
    IndexGate gate,
    ExtensionOptions options,
    ILogger<DatapointSync> logger,
    IImageEmbedder? embedder = null)
{
    // An object rewritten this often while being indexed is left to the event's redelivery.
    private const int MaxRounds = 5;

    /// <summary>True when the image's content (by MD5) is the one already indexed: nothing to embed again.</summary>
    public async Task<bool> IsAlreadyIndexedAsync(string objectName, string? md5Hash, CancellationToken cancellationToken)
    {
        var record = await state.GetDatapointRecordAsync(objectName, cancellationToken);
        return record is { Status: DatapointStatus.Indexed } && record.IsCurrentFor(md5Hash);
    }

    public async Task SyncAsync(DeployedIndex index, string objectName, CancellationToken cancellationToken)
    {
        var current = await objects.GetMetadataAsync(options.ImageBucket, objectName, cancellationToken);
        await WriteUntilSettledAsync(index.Index, objectName, current, trustRecord: true, cancellationToken);
    }

    /// <summary>
    /// After another writer (a backfill chunk) wrote <paramref name="objectName"/>'s datapoint and record from the
    /// generation <paramref name="writtenGeneration"/> (0: written as absent; no object has generation 0), reads the
    /// object again and, when it changed meanwhile, writes it again from what is there now.
    /// </summary>
    public async Task RecheckAsync(string index, string objectName, long writtenGeneration, CancellationToken cancellationToken)
    {
        var current = await objects.GetMetadataAsync(options.ImageBucket, objectName, cancellationToken);
        if ((current?.Generation ?? 0) != writtenGeneration)
        {
            LogChangedWhileWriting(logger, objectName);
            await WriteUntilSettledAsync(index, objectName, current, trustRecord: false, cancellationToken);
        }
    }

    private async Task WriteUntilSettledAsync(string index, string objectName, StoredObject? current, bool trustRecord, CancellationToken cancellationToken)
    {
        for (var round = 1; ; round++)
        {
            await WriteAsync(index, objectName, current, trustRecord, cancellationToken);
            var now = await objects.GetMetadataAsync(options.ImageBucket, objectName, cancellationToken);
            if (now?.Generation == current?.Generation)
            {
                return;
            }

            if (round == MaxRounds)
            {
                throw new InvalidOperationException($"{objectName} changed {MaxRounds} times while it was being indexed; the event is delivered again.");
            }

            // The record may describe the racing writer's write while the index holds ours: write regardless of it.
            LogChangedWhileWriting(logger, objectName);
            current = now;
            trustRecord = false;
        }
    }

    private async Task WriteAsync(string index, string objectName, StoredObject? current, bool trustRecord, CancellationToken cancellationToken)
    {
        if (current is null)
        {
            await vectorIndex.RemoveDatapointsAsync(index, ImageViews.AllIds(objectName), cancellationToken);
            await state.DeleteDatapointRecordAsync(objectName, cancellationToken);
            LogRemoved(logger, objectName);
            return;
        }

        if (trustRecord && await state.GetDatapointRecordAsync(objectName, cancellationToken) is { } record && record.IsCurrentFor(current.Md5Hash))
        {
            LogUnchanged(logger, objectName);
            return;
        }

        var rejection = current.Size > options.MaxImageBytes
            ? ImageRejections.TooManyBytes(current.Size, options.MaxImageBytes)
            : null;
        EmbeddingResult? embedding = null;
        if (rejection is null)
        {
            if (embedder is null)
            {
                await gate.HandOverAsync(new DatapointWrite(DatapointWrite.Update, objectName), current.Generation, cancellationToken);
                return;
            }

            byte[] bytes;
            try
            {
                bytes = await objects.ReadAsync(options.ImageBucket, objectName, cancellationToken);
            }
            catch (ObjectNotFoundException)
            {
                return; // Deleted since its metadata was read: the second look finds it gone and removes it.
            }

            embedding = (await embedder.EmbedForIndexAsync([bytes], cancellationToken))[0];
            rejection = embedding.RejectionReason;
        }

        var stale = ImageViews.StaleIds(objectName, embedding, options.MatchCrops);
        if (embedding?.Vector is null)
        {
            // An unusable file must not linger in the index under a name whose content changed, nor its views.
            await vectorIndex.RemoveDatapointsAsync(index, stale, cancellationToken);
            var skipped = new DatapointRecord(objectName, DatapointStatus.Skipped, current.Md5Hash, current.Generation, rejection);
            if (await state.SaveDatapointRecordAsync(skipped, cancellationToken))
            {
                Telemetry.CountImage(skipped); // once per content: a rewrite after a racing writer counts nothing new
            }

            LogSkipped(logger, objectName, rejection!);
            return;
        }

        // The image and its views in one call; then the views it no longer has. Both before the second look (the
        // ordering rule), so a writer that raced this one writes its own set again, with its own removals, after ours.
        await vectorIndex.UpsertDatapointsAsync(index, ImageViews.Datapoints(objectName, embedding), cancellationToken);
        if (stale.Count > 0)
        {
            await vectorIndex.RemoveDatapointsAsync(index, stale, cancellationToken);
        }

        var indexed = new DatapointRecord(objectName, DatapointStatus.Indexed, current.Md5Hash, current.Generation, null);
        if (await state.SaveDatapointRecordAsync(indexed, cancellationToken))
        {
            Telemetry.CountImage(indexed);
        }

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

    [LoggerMessage(Level = LogLevel.Information, Message = "{ObjectName} changed while its datapoint was written; writing it again from the object as it is now")]
    private static partial void LogChangedWhileWriting(ILogger logger, string objectName);
}
