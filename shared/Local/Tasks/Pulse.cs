namespace ReverseImageSearch.Local.Tasks;

/// <summary>
/// Wakes everyone waiting for "something changed". A waiter takes <see cref="NextAsync"/> before it looks
/// at the state, so a change that happens while it looks is never missed.
/// </summary>
internal sealed class Pulse
{
    private readonly Lock gate = new();
    private TaskCompletionSource next = NewSource();

    public Task NextAsync()
    {
        lock (gate)
        {
            return next.Task;
        }
    }

    public void Fire()
    {
        TaskCompletionSource fired;
        lock (gate)
        {
            fired = next;
            next = NewSource();
        }

        fired.TrySetResult();
    }

    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
