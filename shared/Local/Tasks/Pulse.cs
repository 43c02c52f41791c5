namespace ReverseImageSearch.Local.Tasks;

/// <summary>
/// Wakes everyone waiting for "something changed". A waiter takes <see cref="NextAsync"/> before it looks
/// at the state, so a change that happens while it looks is never missed.
/// </summary>
internal sealed class Pulse
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _next = NewSource();

    public Task NextAsync()
    {
        lock (_gate)
        {
            return _next.Task;
        }
    }

    public void Fire()
    {
        TaskCompletionSource fired;
        lock (_gate)
        {
            fired = _next;
            _next = NewSource();
        }

        fired.TrySetResult();
    }

    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
