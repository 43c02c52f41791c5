using System.Text.Json;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

/// <summary>
/// datapointWriteTask (task queue): a datapoint write that waited for the index. Passes the same gate
/// again: once the index is deployed the image is synced; until then it waits another round.
/// </summary>
public sealed class DatapointWriteTask(IndexGate gate, DatapointSync sync) : ITaskFunction
{
    public async Task HandleAsync(TaskDelivery task, CancellationToken cancellationToken)
    {
        var write = task.Data.ValueKind == JsonValueKind.Object ? task.Data.Deserialize<DatapointWrite>(CoreJson.Options) : null;
        if (write is null || string.IsNullOrEmpty(write.ImagePath)
            || write.Operation is not (DatapointWrite.Update or DatapointWrite.Remove))
        {
            throw new FunctionException(FunctionErrorCode.InvalidArgument,
                "datapointWriteTask needs {operation: \"update\" | \"remove\", imagePath}.");
        }

        var index = await gate.PassOrDeferAsync(write, cancellationToken);
        if (index is not null)
        {
            await sync.SyncAsync(index, write.ImagePath, cancellationToken);
        }
    }
}
