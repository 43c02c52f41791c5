using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

/// <summary>
/// streamRemoveDatapoint (Storage object deleted): removes the image's datapoint. An overwrite also
/// deletes the old generation; the sync sees the new object and keeps it indexed. While the index is
/// not deployed the removal waits in datapointWriteTask.
/// </summary>
public sealed partial class StreamRemoveDatapoint(
    ImageScope scope,
    IndexGate gate,
    DatapointSync sync,
    ILogger<StreamRemoveDatapoint> logger) : IStorageFunction
{
    public StorageEventKind Kind => StorageEventKind.Deleted;

    public async Task HandleAsync(StorageObjectEvent storageEvent, CancellationToken cancellationToken)
    {
        if (!scope.Contains(storageEvent.Bucket, storageEvent.Name, storageEvent.ContentType))
        {
            LogOutOfScope(logger, storageEvent.Name);
            return;
        }

        var index = await gate.PassOrDeferAsync(new DatapointWrite(DatapointWrite.Remove, storageEvent.Name), cancellationToken);
        if (index is not null)
        {
            await sync.SyncAsync(index, storageEvent.Name, cancellationToken);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Ignoring {ObjectName}: not an image under IMG_PATH")]
    private static partial void LogOutOfScope(ILogger logger, string objectName);
}
