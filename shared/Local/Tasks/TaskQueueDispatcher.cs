using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;
using ReverseImageSearch.Local.Database;

namespace ReverseImageSearch.Local.Tasks;

/// <summary>
/// Delivers due tasks of the <see cref="SqliteTaskQueue"/> to the handlers of their queues, at least once:
/// a task is leased before delivery, removed when its handler returns, and scheduled again with backoff
/// when it throws, until its queue's <see cref="RetryPolicy"/> gives up and marks it dead. A lease that
/// expires, or whose holder process has ended (killed mid-delivery, see <see cref="LeaseOwner"/>), makes
/// the task due again, also for a later dispatcher on the same file. Tasks of queues without a handler stay where they are.
/// Run it as a hosted service, or call StartAsync / StopAsync directly.
/// </summary>
public sealed partial class TaskQueueDispatcher : BackgroundService
{
    private readonly SqliteTaskQueue _queue;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<TaskQueueDispatcher> _logger;
    private readonly TaskQueueDispatcherOptions _options;
    private readonly Dictionary<string, QueueWorker> _workers;

    // Wakes the dispatch loop: a task was enqueued or a delivery slot came free.
    private readonly Pulse _wake = new();

    private readonly ConcurrentDictionary<string, Task> _deliveries = new(StringComparer.Ordinal);
    private readonly Lock _jitterGate = new();

    public TaskQueueDispatcher(
        SqliteTaskQueue queue,
        IEnumerable<TaskQueueHandler> handlers,
        TimeProvider timeProvider,
        ILogger<TaskQueueDispatcher> logger,
        TaskQueueDispatcherOptions? options = null)
    {
        _queue = queue;
        _timeProvider = timeProvider;
        _logger = logger;
        _options = options ?? new TaskQueueDispatcherOptions();
        if (_options.LeaseDuration <= TimeSpan.Zero || _options.PollInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException("LeaseDuration and PollInterval must be positive.", nameof(options));
        }

        _workers = new Dictionary<string, QueueWorker>(StringComparer.Ordinal);
        foreach (var handler in handlers)
        {
            var settings = handler.Settings ?? TaskQueueSettings.Default;
            settings.Retry.Validate(handler.Queue);
            if (settings.MaxConcurrentDeliveries < 1)
            {
                throw new ArgumentException($"Queue {handler.Queue}: MaxConcurrentDeliveries must be at least 1, not {settings.MaxConcurrentDeliveries}.", nameof(handlers));
            }

            if (!_workers.TryAdd(handler.Queue, new QueueWorker(handler, settings)))
            {
                throw new ArgumentException($"Queue {handler.Queue} has more than one handler.", nameof(handlers));
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _queue.TaskEnqueued += OnTaskEnqueued;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var woken = _wake.NextAsync();
                try
                {
                    await DispatchDueAsync(stoppingToken);
                    await SleepAsync(woken, await NextDueTimeAsync(stoppingToken), stoppingToken);
                }
                catch (LocalDatabaseUnusableException)
                {
                    // Damaged: the database logged it once and its health check reports it; trying again is harmless.
                    await SleepAsync(woken, _timeProvider.GetUtcNow() + _options.PollInterval, stoppingToken);
                }
                catch (Exception exception) when (exception is not OperationCanceledException)
                {
                    // A database failure must not end delivery for good: the tasks are durable, try again later.
                    LogDispatchFailed(_logger, exception, _options.PollInterval);
                    await SleepAsync(woken, _timeProvider.GetUtcNow() + _options.PollInterval, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
        finally
        {
            _queue.TaskEnqueued -= OnTaskEnqueued;
            // Handlers see the stopping token; interrupted deliveries give their task back (DeliverAsync).
            await Task.WhenAll(_deliveries.Values);
        }
    }

    private void OnTaskEnqueued(string queueName)
    {
        if (_workers.ContainsKey(queueName))
        {
            _wake.Fire();
        }
    }

    private async Task DispatchDueAsync(CancellationToken stoppingToken)
    {
        foreach (var worker in _workers.Values)
        {
            var freeSlots = worker.Settings.MaxConcurrentDeliveries - Volatile.Read(ref worker.Running);
            if (freeSlots <= 0)
            {
                continue;
            }

            var batch = await _queue.LeaseDueAsync(worker.Queue, freeSlots, _options.LeaseDuration, worker.Settings.Retry, LeaseOwner.Current, stoppingToken);
            foreach (var expired in batch.Expired)
            {
                LogTaskDead(_logger, expired.Queue, expired.TaskName, expired.Attempts, "its last delivery never reported back before the lease expired");
            }

            foreach (var lease in batch.Leased)
            {
                Interlocked.Increment(ref worker.Running);
                var delivery = DeliverAsync(worker, lease, stoppingToken);
                _deliveries[lease.Token] = delivery;
                if (delivery.IsCompleted)
                {
                    // It finished before it was tracked; its own clean-up already ran.
                    _deliveries.TryRemove(lease.Token, out _);
                }
            }
        }
    }

    private async Task<DateTimeOffset?> NextDueTimeAsync(CancellationToken cancellationToken)
    {
        // A full queue's due tasks wait for a free slot, which wakes the loop itself.
        var queuesWithFreeSlots = _workers.Values
            .Where(worker => Volatile.Read(ref worker.Running) < worker.Settings.MaxConcurrentDeliveries)
            .Select(worker => worker.Queue)
            .ToArray();
        return await _queue.NextDueTimeAsync(queuesWithFreeSlots, cancellationToken);
    }

    private async Task SleepAsync(Task woken, DateTimeOffset? nextDueTime, CancellationToken stoppingToken)
    {
        var wait = _options.PollInterval;
        if (nextDueTime is { } due)
        {
            var untilDue = due - _timeProvider.GetUtcNow();
            wait = untilDue < wait ? untilDue : wait;
        }

        if (wait <= TimeSpan.Zero)
        {
            return;
        }

        using var timerCancellation = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var timer = Task.Delay(wait, _timeProvider, timerCancellation.Token);
        // The timer counts from its own creation: if the clock jumped since the wait was computed, it is already due.
        if (nextDueTime is not { } dueTime || _timeProvider.GetUtcNow() < dueTime)
        {
            await Task.WhenAny(woken, timer);
        }

        await timerCancellation.CancelAsync();
        stoppingToken.ThrowIfCancellationRequested();
    }

    private async Task DeliverAsync(QueueWorker worker, TaskLease lease, CancellationToken stoppingToken)
    {
        var task = lease.Task;
        try
        {
            Exception? failure = null;
            try
            {
                Telemetry.CountDelivery(task.Queue, task.RetryCount);

                // Off the dispatch loop: a handler that blocks before its first await must not stall other queues.
                await Task.Run(() => worker.Handler.Handle(task, stoppingToken), CancellationToken.None);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                LogDeliveryInterrupted(_logger, task.Queue, task.TaskName);
                await _queue.ReleaseAsync(lease);
                return;
            }
            catch (Exception exception)
            {
                failure = exception;
            }

            var leaseKept = failure is null
                ? await _queue.CompleteAsync(lease)
                : await RecordFailureAsync(worker.Settings.Retry, lease, failure);
            if (!leaseKept)
            {
                LogLeaseLost(_logger, task.Queue, task.TaskName);
            }
        }
        catch (Exception exception)
        {
            // The lease stays in the table and expires, so the task is delivered again: nothing is lost.
            LogOutcomeNotRecorded(_logger, exception, task.Queue, task.TaskName);
        }
        finally
        {
            Interlocked.Decrement(ref worker.Running);
            _deliveries.TryRemove(lease.Token, out _);
            _wake.Fire();
        }
    }

    private async Task<bool> RecordFailureAsync(RetryPolicy policy, TaskLease lease, Exception failure)
    {
        var task = lease.Task;
        var attemptsMade = task.RetryCount + 1;
        if (policy.IsExhausted(attemptsMade))
        {
            var recorded = await _queue.FailAsync(lease, failure.ToString(), retryAt: null);
            LogTaskDeadAfterFailure(_logger, failure, task.Queue, task.TaskName, attemptsMade);
            return recorded;
        }

        double jitterSample;
        lock (_jitterGate)
        {
            jitterSample = _options.Jitter.NextDouble();
        }

        var backoff = policy.BackoffAfter(attemptsMade, jitterSample);
        LogAttemptFailed(_logger, failure, task.Queue, task.TaskName, attemptsMade, backoff);
        return await _queue.FailAsync(lease, failure.ToString(), _timeProvider.GetUtcNow() + backoff);
    }

    private sealed class QueueWorker(TaskQueueHandler handler, TaskQueueSettings settings)
    {
        // Deliveries of this queue in progress; changed only with Interlocked.
        public int Running;

        public TaskQueueHandler Handler { get; } = handler;

        public TaskQueueSettings Settings { get; } = settings;

        public string Queue => Handler.Queue;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskName} of queue {Queue} failed on attempt {Attempt}; retrying in {Backoff}.")]
    private static partial void LogAttemptFailed(ILogger logger, Exception exception, string queue, string taskName, int attempt, TimeSpan backoff);

    [LoggerMessage(Level = LogLevel.Error, Message = "Task {TaskName} of queue {Queue} is dead after {Attempts} attempts; it is kept with its last error.")]
    private static partial void LogTaskDeadAfterFailure(ILogger logger, Exception exception, string queue, string taskName, int attempts);

    [LoggerMessage(Level = LogLevel.Error, Message = "Task {TaskName} of queue {Queue} is dead after {Attempts} attempts: {Reason}.")]
    private static partial void LogTaskDead(ILogger logger, string queue, string taskName, int attempts, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Delivery of task {TaskName} of queue {Queue} was interrupted by shutdown; it will be delivered again.")]
    private static partial void LogDeliveryInterrupted(ILogger logger, string queue, string taskName);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskName} of queue {Queue} finished after its lease expired; the later delivery's outcome counts.")]
    private static partial void LogLeaseLost(ILogger logger, string queue, string taskName);

    [LoggerMessage(Level = LogLevel.Error, Message = "The outcome of task {TaskName} of queue {Queue} could not be recorded; it will be delivered again when its lease expires.")]
    private static partial void LogOutcomeNotRecorded(ILogger logger, Exception exception, string queue, string taskName);

    [LoggerMessage(Level = LogLevel.Error, Message = "Dispatching tasks failed; trying again in {Delay}.")]
    private static partial void LogDispatchFailed(ILogger logger, Exception exception, TimeSpan delay);
}
