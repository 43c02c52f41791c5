using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

public sealed class StreamUpdateDatapoint : IStorageFunction
{
    public StorageEventKind Kind => StorageEventKind.Finalized;
    public Task HandleAsync(StorageObjectEvent storageEvent, CancellationToken cancellationToken) => throw new NotImplementedException();
}
