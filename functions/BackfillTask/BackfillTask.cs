using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

/// <summary>
/// backfillTask (task queue): embeds one chunk of images (with their views under MATCH_CROPS), writes them as JSON lines to
/// gs://{embeddings bucket}/datapoints/{taskId}.json (INDEX_BACKEND=vertex: the index is built from these files)
/// or straight into their vector documents in batched commits (firestore: searchable at once), and counts the chunk exactly once. Images that
/// cannot be embedded are skipped with their reason recorded; any other failure is retried, and on the
/// last attempt the chunk is recorded as FAILED so the backfill still completes.
/// </summary>
public sealed partial class BackfillTask(
    IObjectStore objects,
    IImageEmbedder embedder,
    IVectorIndexService vectorIndex,
    CoordinationState state,
    DatapointSync sync,
    ExtensionOptions options,
    ILogger<BackfillTask> logger) : ITaskFunction
{
    public async Task HandleAsync(TaskDelivery task, CancellationToken cancellationToken)
    {
        var chunk = task.Data.Deserialize<BackfillChunk>(CoreJson.Options)
            ?? throw new FunctionException(FunctionErrorCode.InvalidArgument, "backfillTask needs {id, bucket, objects}.");
        if (string.IsNullOrEmpty(chunk.Id) || chunk.Objects is null)
        {
            throw new FunctionException(FunctionErrorCode.InvalidArgument, "backfillTask needs {id, bucket, objects}.");
        }

        if (!await state.TryBeginChunkAsync(chunk.Id, cancellationToken))
        {
            LogAlreadyCounted(logger, chunk.Id);
            return;
        }

        try
        {
            var outcome = await EmbedChunkAsync(chunk, cancellationToken);
            var counted = await state.CompleteChunkAsync(outcome, cancellationToken);
            if (counted)
            {
                // Once per chunk, as the progress counts it: a redelivered chunk is not counted again.
                foreach (var record in outcome.Records)
                {
                    Telemetry.CountImage(record);
                }
            }

            LogChunkDone(logger, chunk.Id, outcome.Records.Count(r => r.Status == DatapointStatus.Indexed), chunk.Objects.Count, counted);
            if (!options.IndexNeedsBuild)
            {
                // Searchable at once, so events for these images are handled while the chunk runs: one that changed
                // since the chunk read it may have had its event's write before ours, and is written again (DatapointSync).
                foreach (var record in outcome.Records)
                {
                    await sync.RecheckAsync(state.Paths.VectorCollection, record.ObjectName, record.Generation, cancellationToken);
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException && task.RetryCount + 1 >= options.BackfillMaxAttempts)
        {
            LogChunkFailed(logger, ex, chunk.Id, task.RetryCount + 1);
            var failed = new ChunkOutcome(chunk.Id, BackfillStatus.Failed, chunk.Objects.Count, embedder.Dimensions, null, ex.Message, []);
            await state.CompleteChunkAsync(failed, cancellationToken);
        }
    }

    private async Task<ChunkOutcome> EmbedChunkAsync(BackfillChunk chunk, CancellationToken cancellationToken)
    {
        var bucket = string.IsNullOrEmpty(chunk.Bucket) ? options.ImageBucket : chunk.Bucket;
        var records = new List<DatapointRecord>(chunk.Objects.Count);
        var readable = new List<(StoredObject Object, byte[] Bytes)>(chunk.Objects.Count);
        foreach (var name in chunk.Objects)
        {
            var stored = await objects.GetMetadataAsync(bucket, name, cancellationToken);
            if (stored is null)
            {
                records.Add(new DatapointRecord(name, DatapointStatus.Skipped, null, 0, ImageRejections.Deleted));
            }
            else if (stored.Size > options.MaxImageBytes)
            {
                records.Add(Skipped(stored, ImageRejections.TooManyBytes(stored.Size, options.MaxImageBytes)));
            }
            else
            {
                readable.Add((stored, await objects.ReadAsync(bucket, name, cancellationToken)));
            }
        }

        // Skipped before reading: deleted, or too large. Whatever the index holds of them goes.
        var stale = records.SelectMany(r => ImageViews.AllIds(r.ObjectName)).ToList();
        var embeddings = await embedder.EmbedForIndexAsync(readable.Select(r => (ReadOnlyMemory<byte>)r.Bytes).ToArray(), cancellationToken);
        var datapoints = new List<IndexDatapoint>(readable.Count);
        for (var i = 0; i < readable.Count; i++)
        {
            var stored = readable[i].Object;
            stale.AddRange(ImageViews.StaleIds(stored.Name, embeddings[i], options.MatchCrops));
            if (embeddings[i].Vector is not null)
            {
                datapoints.AddRange(ImageViews.Datapoints(stored.Name, embeddings[i]));
                records.Add(new DatapointRecord(stored.Name, DatapointStatus.Indexed, stored.Md5Hash, stored.Generation, null));
            }
            else
            {
                records.Add(Skipped(stored, embeddings[i].RejectionReason!));
            }
        }

        foreach (var skipped in records.Where(r => r.Status == DatapointStatus.Skipped))
        {
            LogImageSkipped(logger, skipped.ObjectName, skipped.Reason!);
        }

        string? filePath = null;
        if (!options.IndexNeedsBuild)
        {
            // Searchable at once, and events may have written some of these images already: the chunk's images with
            // their views in one call, then what must not stay (views they no longer have, images skipped) in one more.
            if (datapoints.Count > 0)
            {
                await vectorIndex.UpsertDatapointsAsync(state.Paths.VectorCollection, datapoints, cancellationToken);
            }

            if (stale.Count > 0)
            {
                await vectorIndex.RemoveDatapointsAsync(state.Paths.VectorCollection, stale, cancellationToken);
            }
        }
        else if (datapoints.Count > 0)
        {
            // The index is built from these files later: nothing is in it yet to take out.
            filePath = await WriteDatapointFileAsync(chunk.Id, datapoints, cancellationToken);
        }

        return new ChunkOutcome(chunk.Id, BackfillStatus.Done, chunk.Objects.Count, embedder.Dimensions, filePath, null, records);
    }

    private async Task<string> WriteDatapointFileAsync(string taskId, List<IndexDatapoint> datapoints, CancellationToken cancellationToken)
    {
        var lines = new StringBuilder();
        foreach (var datapoint in datapoints)
        {
            var restricts = datapoint.Folders.Count == 0 ? null : new[] { new DatapointRestrict(ImageFolders.TokenNamespace, datapoint.Folders) };
            var line = new DatapointLine(datapoint.DatapointId, datapoint.FeatureVector, restricts, datapoint.Image);
            lines.Append(JsonSerializer.Serialize(line, CoreJson.Options)).Append('\n');
        }

        var objectName = $"{ExtensionOptions.DatapointsFolder}/{taskId}.json";
        await objects.WriteAsync(options.EmbeddingsBucket, objectName, Encoding.UTF8.GetBytes(lines.ToString()), "application/json", cancellationToken);
        return $"gs://{options.EmbeddingsBucket}/{objectName}";
    }

    private static DatapointRecord Skipped(StoredObject stored, string reason) =>
        new(stored.Name, DatapointStatus.Skipped, stored.Md5Hash, stored.Generation, reason);

    /// <summary>
    /// One line of a Vector Search datapoints file: {"id": ..., "embedding": [...], "restricts": [{"namespace": "folder",
    /// "allow": [...]}], "crowding_tag": ...}. The crowding tag is the image (a view's image, an image's own id), as the
    /// streaming upserts write it: an image and its views answer a query once (MATCH_CROPS).
    /// </summary>
    private sealed record DatapointLine(
        string Id,
        float[] Embedding,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        DatapointRestrict[]? Restricts,
        [property: JsonPropertyName("crowding_tag")]
        string CrowdingTag);

    private sealed record DatapointRestrict(string Namespace, IReadOnlyList<string> Allow);

    [LoggerMessage(Level = LogLevel.Information, Message = "Chunk {TaskId}: {Embedded} of {Total} images embedded (counted now: {Counted})")]
    private static partial void LogChunkDone(ILogger logger, string taskId, int embedded, int total, bool counted);

    [LoggerMessage(Level = LogLevel.Information, Message = "Chunk {TaskId} was already counted; nothing to do")]
    private static partial void LogAlreadyCounted(ILogger logger, string taskId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipped {ObjectName}: {Reason}")]
    private static partial void LogImageSkipped(ILogger logger, string objectName, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Chunk {TaskId} failed on its last attempt ({Attempts}); recorded as FAILED")]
    private static partial void LogChunkFailed(ILogger logger, Exception exception, string taskId, int attempts);
}
