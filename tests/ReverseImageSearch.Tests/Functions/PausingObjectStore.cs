using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>
/// An object store that can hold one call for one object right after it returned, until the test lets it go: a handler
/// stopped between its read of an object and its write to the index, while the test runs another handler in between.
/// </summary>
internal sealed class PausingObjectStore(IObjectStore inner) : IObjectStore
{
    private PausePoint? _armed;

    /// <summary>Holds the next metadata read of <paramref name="name"/> after it returned.</summary>
    public PausePoint PauseAfterMetadata(string name) => Arm(new PausePoint(nameof(GetMetadataAsync), name));

    /// <summary>Holds the next content read of <paramref name="name"/> after it returned.</summary>
    public PausePoint PauseAfterRead(string name) => Arm(new PausePoint(nameof(ReadAsync), name));

    public IAsyncEnumerable<StoredObject> ListAsync(string bucket, string? prefix, CancellationToken cancellationToken = default) =>
        inner.ListAsync(bucket, prefix, cancellationToken);

    public async Task<StoredObject?> GetMetadataAsync(string bucket, string name, CancellationToken cancellationToken = default)
    {
        var result = await inner.GetMetadataAsync(bucket, name, cancellationToken);
        await HoldAsync(nameof(GetMetadataAsync), name, cancellationToken);
        return result;
    }

    public async Task<byte[]> ReadAsync(string bucket, string name, CancellationToken cancellationToken = default)
    {
        var result = await inner.ReadAsync(bucket, name, cancellationToken);
        await HoldAsync(nameof(ReadAsync), name, cancellationToken);
        return result;
    }

    public Task<StoredObject> WriteAsync(string bucket, string name, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken = default) =>
        inner.WriteAsync(bucket, name, content, contentType, cancellationToken);

    public Task<bool> DeleteAsync(string bucket, string name, CancellationToken cancellationToken = default) =>
        inner.DeleteAsync(bucket, name, cancellationToken);

    private PausePoint Arm(PausePoint point)
    {
        _armed = point;
        return point;
    }

    private async Task HoldAsync(string call, string name, CancellationToken cancellationToken)
    {
        var point = _armed;
        if (point is null || point.Call != call || point.Name != name || Interlocked.CompareExchange(ref _armed, null, point) != point)
        {
            return;
        }

        point.Reached.TrySetResult();
        await point.Released.Task.WaitAsync(cancellationToken);
    }
}

/// <summary>One held call: <see cref="Reached"/> completes when the call is held; <see cref="Release"/> lets it return.</summary>
internal sealed class PausePoint(string call, string name)
{
    public string Call { get; } = call;

    public string Name { get; } = name;

    public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Released { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task WaitUntilReachedAsync() => Reached.Task.WaitAsync(TimeSpan.FromSeconds(30));

    public void Release() => Released.TrySetResult();
}
