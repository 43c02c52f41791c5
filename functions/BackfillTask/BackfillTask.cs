using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

public sealed class BackfillTask : ITaskFunction
{
    public Task HandleAsync(TaskDelivery task, CancellationToken cancellationToken) => throw new NotImplementedException();
}
