namespace ReverseImageSearch.Local.Tasks;

/// <summary>
/// Cloud Tasks' retry configuration: the wait after a failure starts at <see cref="MinBackoff"/>, doubles
/// <see cref="MaxDoublings"/> times, then grows linearly by the last doubled step, never beyond
/// <see cref="MaxBackoff"/>. <see cref="JitterRatio"/> spreads retries of tasks that failed together.
/// </summary>
/// <param name="MaxAttempts">Deliveries in all, the first included; -1 for unlimited.</param>
/// <param name="JitterRatio">Up to this fraction of the backoff is added at random.</param>
public sealed record RetryPolicy(int MaxAttempts, TimeSpan MinBackoff, TimeSpan MaxBackoff, int MaxDoublings, double JitterRatio = 0.1)
{
    /// <summary>Cloud Tasks' queue defaults.</summary>
    public static RetryPolicy Default { get; } = new(100, TimeSpan.FromSeconds(0.1), TimeSpan.FromHours(1), 16);

    public const int Unlimited = -1;

    public bool IsExhausted(int attemptsMade) => MaxAttempts != Unlimited && attemptsMade >= MaxAttempts;

    /// <summary>The wait before the next attempt after <paramref name="attemptsMade"/> failed ones.</summary>
    /// <param name="jitterSample">A number in [0, 1) choosing how much jitter to add.</param>
    public TimeSpan BackoffAfter(int attemptsMade, double jitterSample)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attemptsMade, 1);
        var retry = attemptsMade - 1;
        var doublings = Math.Min(retry, MaxDoublings);
        var doubled = MinBackoff.TotalMilliseconds * Math.Pow(2, doublings);
        var linearSteps = retry - doublings;
        var baseMilliseconds = doubled * (1 + linearSteps);
        var withJitter = baseMilliseconds * (1 + (JitterRatio * jitterSample));
        return TimeSpan.FromMilliseconds(Math.Min(withJitter, MaxBackoff.TotalMilliseconds));
    }

    internal void Validate(string queue)
    {
        if (MaxAttempts is 0 or < Unlimited)
        {
            throw new ArgumentException($"Queue {queue}: MaxAttempts must be positive or -1 (unlimited), not {MaxAttempts}.");
        }

        if (MinBackoff < TimeSpan.Zero || MaxBackoff < MinBackoff)
        {
            throw new ArgumentException($"Queue {queue}: backoff must satisfy 0 <= MinBackoff ({MinBackoff}) <= MaxBackoff ({MaxBackoff}).");
        }

        if (MaxDoublings < 0 || JitterRatio < 0)
        {
            throw new ArgumentException($"Queue {queue}: MaxDoublings ({MaxDoublings}) and JitterRatio ({JitterRatio}) must not be negative.");
        }
    }
}

/// <summary>Delivery settings of one queue.</summary>
/// <param name="MaxConcurrentDeliveries">Deliveries of this queue running at once in one dispatcher.</param>
public sealed record TaskQueueSettings(RetryPolicy Retry, int MaxConcurrentDeliveries = 2)
{
    public static TaskQueueSettings Default { get; } = new(RetryPolicy.Default);
}

/// <summary>The handler of one queue: a task is done when the returned task completes, and failed when it throws.</summary>
public sealed record TaskQueueHandler(string Queue, Func<QueuedTask, CancellationToken, Task> Handle, TaskQueueSettings? Settings = null);

public sealed class TaskQueueDispatcherOptions
{
    /// <summary>
    /// How long a delivery may run before the task counts as abandoned and is delivered again
    /// (a dispatcher that died mid-delivery never reports). Cloud Tasks' longest dispatch deadline.
    /// </summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Longest sleep between looks at the table, for tasks another process wrote to the same file.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The source of backoff jitter.</summary>
    public Random Jitter { get; init; } = Random.Shared;
}
