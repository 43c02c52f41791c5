using System.Text.Json;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Tests.Local.Fakes;

public sealed record EnqueuedTask(string Queue, JsonElement Payload, TaskOptions? Options);

/// <summary>Records what is enqueued, honours de-duplication ids, and lets tests wait for a task to arrive.</summary>
public sealed class InMemoryTaskQueue : ITaskQueue
{
    private readonly Lock _gate = new();
    private readonly List<EnqueuedTask> _tasks = [];
    private readonly HashSet<string> _usedIds = new(StringComparer.Ordinal);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>When set, EnqueueAsync throws it (to simulate an unavailable queue).</summary>
    public Exception? FailWith { get; set; }

    public IReadOnlyList<EnqueuedTask> Tasks
    {
        get
        {
            lock (_gate)
            {
                return [.. _tasks];
            }
        }
    }

    public Task<bool> EnqueueAsync(string functionName, JsonElement payload, TaskOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (FailWith is { } failure)
        {
            throw failure;
        }

        TaskCompletionSource changed;
        lock (_gate)
        {
            if (options?.Id is { } id && !_usedIds.Add(id))
            {
                return Task.FromResult(false);
            }

            _tasks.Add(new EnqueuedTask(functionName, payload.Clone(), options));
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.SetResult();
        return Task.FromResult(true);
    }

    public IReadOnlyList<T> PayloadsOf<T>(string queue) =>
        Tasks.Where(task => task.Queue == queue).Select(task => task.Payload.Deserialize<T>(CoreJson.Options)!).ToList();

    /// <summary>Waits until <paramref name="condition"/> holds for the tasks enqueued so far.</summary>
    public async Task<IReadOnlyList<EnqueuedTask>> WaitUntilAsync(Func<IReadOnlyList<EnqueuedTask>, bool> condition, TimeSpan? timeout = null)
    {
        using var deadline = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (condition(_tasks))
                {
                    return [.. _tasks];
                }

                changed = _changed.Task;
            }

            try
            {
                await changed.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"Timed out waiting for tasks; enqueued so far: {string.Join(", ", Tasks.Select(t => $"{t.Queue} {t.Payload}"))}");
            }
        }
    }
}
