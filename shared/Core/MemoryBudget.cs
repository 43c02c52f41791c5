namespace ReverseImageSearch.Core;

/// <summary>
/// Admits work by the memory it will hold, so that concurrent requests together stay inside the process's memory:
/// a caller waits, in arrival order, until what is in flight plus its own weight fits <see cref="Capacity"/>.
/// A weight over the capacity is admitted alone (clamped to it), so any legal input still gets through.
/// </summary>
public sealed class MemoryBudget
{
    private readonly Lock _gate = new();
    private readonly LinkedList<Waiter> _waiting = new();
    private long _inUse;

    public MemoryBudget(long capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Capacity = capacity;
    }

    public long Capacity { get; }

    /// <summary>Waits until <paramref name="weight"/> fits; disposing the lease gives it back.</summary>
    public async Task<IDisposable> AcquireAsync(long weight, CancellationToken cancellationToken = default)
    {
        var clamped = Math.Clamp(weight, 0, Capacity);
        LinkedListNode<Waiter> node;
        lock (_gate)
        {
            if (_waiting.Count == 0 && _inUse + clamped <= Capacity)
            {
                _inUse += clamped;
                return new Lease(this, clamped);
            }

            node = _waiting.AddLast(new Waiter(clamped));
        }

        await using (cancellationToken.Register(() => Withdraw(node)))
        {
            await node.Value.Admitted.Task;
        }

        return new Lease(this, clamped);
    }

    /// <summary>The blocking form, for work that runs on its own thread (image decoding inside a parallel loop).</summary>
    public IDisposable Acquire(long weight) => AcquireAsync(weight).GetAwaiter().GetResult();

    private void Withdraw(LinkedListNode<Waiter> node)
    {
        lock (_gate)
        {
            if (node.List is null)
            {
                return;
            }

            _waiting.Remove(node);
            node.Value.Admitted.TrySetCanceled();
            AdmitWaiting();
        }
    }

    private void Release(long weight)
    {
        lock (_gate)
        {
            _inUse -= weight;
            AdmitWaiting();
        }
    }

    private void AdmitWaiting()
    {
        while (_waiting.First is { } first && _inUse + first.Value.Weight <= Capacity)
        {
            _inUse += first.Value.Weight;
            _waiting.RemoveFirst();
            first.Value.Admitted.TrySetResult();
        }
    }

    private sealed class Waiter(long weight)
    {
        public long Weight { get; } = weight;

        public TaskCompletionSource Admitted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Lease(MemoryBudget budget, long weight) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                budget.Release(weight);
            }
        }
    }
}
