using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

/// <summary>
/// streamUpdateDatapoint (Storage object finalized): embeds a new or replaced image and upserts its
/// datapoint. Content already indexed (same MD5) is not embedded again. While the index is not deployed
/// the write waits in datapointWriteTask; with no index at all, the first image starts one.
/// </summary>
public sealed partial class StreamUpdateDatapoint(
    ImageScope scope,
    IndexGate gate,
    DatapointSync sync,
    ILogger<StreamUpdateDatapoint> logger) : IStorageFunction
{
    public StorageEventKind Kind => StorageEventKind.Finalized;

    public async Task HandleAsync(StorageObjectEvent storageEvent, CancellationToken cancellationToken)
    {
        if (!scope.Contains(storageEvent.Bucket, storageEvent.Name, storageEvent.ContentType))
        {
            LogOutOfScope(logger, storageEvent.Name);
            return;
        }

        if (await sync.IsAlreadyIndexedAsync(storageEvent.Name, storageEvent.Md5Hash, cancellationToken))
        {
            LogUnchanged(logger, storageEvent.Name);
            return;
        }

        var index = await gate.PassOrDeferAsync(new DatapointWrite(DatapointWrite.Update, storageEvent.Name), cancellationToken);
        if (index is not null)
        {
            await sync.SyncAsync(index, storageEvent.Name, cancellationToken);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Ignoring {ObjectName}: not an image under IMG_PATH")]
    private static partial void LogOutOfScope(ILogger logger, string objectName);

    [LoggerMessage(Level = LogLevel.Information, Message = "Skipping {ObjectName}: its content is already indexed")]
    private static partial void LogUnchanged(ILogger logger, string objectName);
}
