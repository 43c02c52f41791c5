using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

public sealed class BackfillTrigger : ITaskFunction
{
    public Task HandleAsync(TaskDelivery task, CancellationToken cancellationToken) => throw new NotImplementedException();
}
