using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

public sealed class CreateIndexTrigger : IDocumentFunction
{
    public Task HandleAsync(DocumentChange change, CancellationToken cancellationToken) => throw new NotImplementedException();
}
