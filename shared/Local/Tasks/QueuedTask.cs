using System.Text.Json;

namespace ReverseImageSearch.Local.Tasks;

/// <summary>One delivery of a task to its queue's handler.</summary>
/// <param name="Id">The task's row id in the local database.</param>
/// <param name="TaskName">The same on every delivery of this task (Cloud Tasks' task name).</param>
/// <param name="RetryCount">0 on the first attempt.</param>
public sealed record QueuedTask(long Id, string Queue, string TaskName, JsonElement Payload, int RetryCount);

/// <summary>A task that exhausted its attempts; kept, with its last error, until someone looks at it.</summary>
public sealed record DeadTask(long Id, string Queue, string TaskName, JsonElement Payload, int Attempts, string? LastError, DateTimeOffset EnqueueTime);

/// <summary>How many tasks of one queue are in each state.</summary>
/// <param name="PendingDue">Waiting for delivery now (including tasks whose lease expired).</param>
/// <param name="ScheduledLater">Waiting for a schedule time in the future (delayed or backing off).</param>
/// <param name="Running">Leased to a dispatcher and not yet finished.</param>
/// <param name="Dead">Exhausted their attempts.</param>
public sealed record QueueTaskCounts(string Queue, int PendingDue, int ScheduledLater, int Running, int Dead)
{
    public int Total => PendingDue + ScheduledLater + Running + Dead;
}

/// <summary>Task counts of every queue that holds tasks.</summary>
public sealed class TaskQueueStats(IReadOnlyDictionary<string, QueueTaskCounts> queues)
{
    public IReadOnlyDictionary<string, QueueTaskCounts> Queues { get; } = queues;

    /// <summary>The counts of <paramref name="queue"/>, all zero when it holds no tasks.</summary>
    public QueueTaskCounts For(string queue) =>
        Queues.TryGetValue(queue, out var counts) ? counts : new QueueTaskCounts(queue, 0, 0, 0, 0);

    /// <summary>Tasks of every queue still to run: due, scheduled for later, or running.</summary>
    public int Outstanding => Queues.Values.Sum(q => q.PendingDue + q.ScheduledLater + q.Running);

    /// <summary>Tasks of every queue that exhausted their attempts.</summary>
    public int Dead => Queues.Values.Sum(q => q.Dead);
}

/// <summary>A task leased for one delivery; the token proves the lease is still this delivery's.</summary>
internal sealed record TaskLease(QueuedTask Task, string Token);

/// <summary>A task found with an expired lease and no attempts left (its dispatcher died mid-delivery).</summary>
internal sealed record ExpiredTask(long Id, string Queue, string TaskName, int Attempts);

internal sealed record LeaseBatch(IReadOnlyList<TaskLease> Leased, IReadOnlyList<ExpiredTask> Expired);
