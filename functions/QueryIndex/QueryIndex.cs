using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

public sealed class QueryIndex : ICallableFunction
{
    public Task<object?> HandleAsync(CallableRequest request, CancellationToken cancellationToken) => throw new NotImplementedException();
}
