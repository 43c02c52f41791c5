using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

public sealed class DatapointWriteTask : ITaskFunction
{
    public Task HandleAsync(TaskDelivery task, CancellationToken cancellationToken) => throw new NotImplementedException();
}
