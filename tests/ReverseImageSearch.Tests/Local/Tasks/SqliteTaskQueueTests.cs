using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.Tasks;

namespace ReverseImageSearch.Tests.Local.Tasks;

public sealed class SqliteTaskQueueTests
{
    private const string Queue = "backfillTask";

    private static readonly TaskQueueSettings RetryAtOnce = new(new RetryPolicy(RetryPolicy.Unlimited, TimeSpan.Zero, TimeSpan.Zero, 0, JitterRatio: 0));

    private TestDatabase _files = null!;
    private CancellationTokenSource _hangGuard = null!;
    private readonly List<TaskQueueDispatcher> _dispatchers = [];
    private readonly Dictionary<TaskQueueDispatcher, (SqliteTaskQueue Queue, string Handled)> _dispatched = [];

    private CancellationToken Guard => _hangGuard.Token;

    [SetUp]
    public void SetUp()
    {
        _files = new TestDatabase();
        // Only stops a broken test from hanging the run; no assertion depends on it.
        _hangGuard = new CancellationTokenSource(TimeSpan.FromSeconds(60));
    }

    [TearDown]
    public async Task TearDown()
    {
        foreach (var dispatcher in _dispatchers)
        {
            // Bounded, so a test that failed while its handler was blocked does not hang the run.
            using var stopGuard = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await dispatcher.StopAsync(stopGuard.Token);
            dispatcher.Dispose();
        }

        _dispatchers.Clear();
        _dispatched.Clear();
        _hangGuard.Dispose();
        _files.Dispose();
    }

    [Test]
    public async Task HandlerThatFailsTwiceIsDeliveredThreeTimesWithTheSameNameThenRemoved()
    {
        var queue = _files.NewQueue();
        var deliveries = new ConcurrentQueue<QueuedTask>();
        await StartDispatcherAsync(queue, new TaskQueueHandler(Queue, (task, _) =>
        {
            deliveries.Enqueue(task);
            return deliveries.Count <= 2 ? throw new InvalidOperationException("transient") : Task.CompletedTask;
        }, RetryAtOnce));

        Assert.That(await queue.EnqueueAsync(Queue, new { chunk = 7 }), Is.True);
        await WaitUntilIdleAsync(_dispatchers[0]);

        var delivered = deliveries.ToArray();
        Assert.That(delivered.Select(task => task.RetryCount), Is.EqualTo(new[] { 0, 1, 2 }));
        Assert.That(delivered.Select(task => task.TaskName).Distinct().Count(), Is.EqualTo(1));
        Assert.That(delivered.Select(task => task.Payload.GetProperty("chunk").GetInt32()), Is.All.EqualTo(7));
        Assert.That((await queue.GetStatsAsync()).For(Queue).Total, Is.Zero);
    }

    [Test]
    public async Task FailedTaskIsScheduledAgainByTheRetryPolicy()
    {
        var policy = new RetryPolicy(RetryPolicy.Unlimited, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(300), MaxDoublings: 3, JitterRatio: 0);
        var queue = _files.NewQueue();
        var attempts = 0;
        var dispatcher = await StartDispatcherAsync(queue, new TaskQueueHandler(Queue, (_, _) =>
        {
            Interlocked.Increment(ref attempts);
            throw new InvalidOperationException("always");
        }, new TaskQueueSettings(policy)));

        await queue.EnqueueAsync(Queue, new { chunk = 1 });
        var expectedSeconds = new[] { 10, 20, 40, 80, 160, 240, 300, 300 };
        foreach (var (seconds, index) in expectedSeconds.Select((seconds, index) => (seconds, index)))
        {
            await WaitUntilIdleAsync(dispatcher);
            Assert.That(attempts, Is.EqualTo(index + 1));
            var retryAt = await queue.NextDueTimeAsync([Queue], Guard);
            Assert.That(retryAt - _files.Clock.GetUtcNow(), Is.EqualTo(TimeSpan.FromSeconds(seconds)), $"backoff after attempt {index + 1}");
            Assert.That((await queue.GetStatsAsync()).For(Queue).ScheduledLater, Is.EqualTo(1));
            _files.Clock.Advance(TimeSpan.FromSeconds(seconds));
        }
    }

    [TestCase(1, 0.0, 10)]
    [TestCase(1, 0.5, 11)]
    [TestCase(4, 0.0, 80)]
    [TestCase(5, 0.0, 160)]
    [TestCase(6, 0.99, 287.52)]
    [TestCase(7, 0.5, 300)]
    [TestCase(40, 0.0, 300)]
    public void BackoffDoublesThenGrowsLinearlyWithJitterUpToTheMaximum(int attemptsMade, double jitterSample, double expectedSeconds)
    {
        var policy = new RetryPolicy(5, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(300), MaxDoublings: 3, JitterRatio: 0.2);

        var backoff = policy.BackoffAfter(attemptsMade, jitterSample);

        Assert.That(backoff.TotalSeconds, Is.EqualTo(expectedSeconds).Within(0.001));
    }

    [Test]
    public async Task DelayedTaskIsNotDeliveredBeforeItIsDue()
    {
        var queue = _files.NewQueue();
        var delivered = new ConcurrentQueue<string>();
        var dispatcher = await StartDispatcherAsync(queue, new TaskQueueHandler(Queue, (task, _) =>
        {
            delivered.Enqueue(task.Payload.GetProperty("name").GetString()!);
            return Task.CompletedTask;
        }));

        await queue.EnqueueAsync(Queue, new { name = "later" }, new TaskOptions(Delay: TimeSpan.FromMinutes(1)));
        await queue.EnqueueAsync(Queue, new { name = "now" });
        await WaitUntilIdleAsync(dispatcher);

        Assert.That(delivered, Is.EqualTo(new[] { "now" }));
        Assert.That((await queue.GetStatsAsync()).For(Queue).ScheduledLater, Is.EqualTo(1));

        _files.Clock.Advance(TimeSpan.FromSeconds(59));
        await queue.EnqueueAsync(Queue, new { name = "now again" });
        await WaitUntilIdleAsync(dispatcher);
        Assert.That(delivered, Is.EqualTo(new[] { "now", "now again" }));

        _files.Clock.Advance(TimeSpan.FromSeconds(1));
        await WaitUntilIdleAsync(dispatcher);
        Assert.That(delivered, Is.EqualTo(new[] { "now", "now again", "later" }));
    }

    [Test]
    public async Task DedupIdIsRefusedWhileTheTaskWaitsAndAfterItRanUntilTheRetentionEnds()
    {
        var queue = _files.NewQueue(options: new SqliteTaskQueueOptions { DedupIdRetention = TimeSpan.FromHours(1) });
        var runs = 0;
        var dispatcher = await StartDispatcherAsync(queue, new TaskQueueHandler(Queue, (_, _) =>
        {
            Interlocked.Increment(ref runs);
            return Task.CompletedTask;
        }));
        var options = new TaskOptions(Delay: TimeSpan.FromMinutes(50), Id: "ext-demo-task1");

        Assert.That(await queue.EnqueueAsync(Queue, new { n = 1 }, options), Is.True);
        Assert.That(await queue.EnqueueAsync(Queue, new { n = 2 }, options), Is.False);
        _files.Clock.Advance(TimeSpan.FromMinutes(50));
        await WaitUntilIdleAsync(dispatcher);
        Assert.That(runs, Is.EqualTo(1));

        // An hour after the enqueue, but not after the run: still remembered.
        _files.Clock.Advance(TimeSpan.FromMinutes(59));
        Assert.That(await queue.EnqueueAsync(Queue, new { n = 3 }, options), Is.False, "the id is remembered for the retention after the task ran");
        Assert.That(await queue.EnqueueAsync("otherQueue", new { n = 3 }, options), Is.True, "ids are per queue");

        _files.Clock.Advance(TimeSpan.FromMinutes(2));
        Assert.That(await queue.EnqueueAsync(Queue, new { n = 4 }, options with { Delay = null }), Is.True, "the retention window has passed");
        await WaitUntilIdleAsync(dispatcher);
        Assert.That(runs, Is.EqualTo(2));
    }

    [TestCase("has space")]
    [TestCase("slash/inside")]
    [TestCase("")]
    public void InvalidDedupIdIsRejected(string id)
    {
        var queue = _files.NewQueue();

        Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueAsync(Queue, new { n = 1 }, new TaskOptions(Id: id)));
    }

    [Test]
    public async Task TaskIsDeadAfterMaxAttemptsWithItsLastErrorKeptAndLogged()
    {
        var logger = new RecordingLogger<TaskQueueDispatcher>();
        var queue = _files.NewQueue();
        var attempts = 0;
        var settings = new TaskQueueSettings(new RetryPolicy(3, TimeSpan.Zero, TimeSpan.Zero, 0, JitterRatio: 0));
        var dispatcher = await StartDispatcherAsync(queue, logger, new TaskQueueHandler(Queue, (_, _) =>
            throw new InvalidOperationException($"embedding failed on attempt {Interlocked.Increment(ref attempts)}"), settings));

        await queue.EnqueueAsync(Queue, new { chunk = 3 });
        await WaitUntilIdleAsync(dispatcher);

        Assert.That(attempts, Is.EqualTo(3));
        var dead = await queue.GetDeadTasksAsync(Queue);
        Assert.That(dead, Has.Count.EqualTo(1));
        Assert.That(dead[0].Attempts, Is.EqualTo(3));
        Assert.That(dead[0].LastError, Does.Contain("embedding failed on attempt 3"));
        Assert.That(dead[0].Payload.GetProperty("chunk").GetInt32(), Is.EqualTo(3));
        Assert.That((await queue.GetStatsAsync()).For(Queue), Is.EqualTo(new QueueTaskCounts(Queue, 0, 0, 0, 1)));
        // The dispatcher logs the death just after recording it, so the queue can look idle a moment before the line is
        // written: wait for it, boundedly.
        Assert.That(
            () => logger.Entries.Where(entry => entry.Level == LogLevel.Error).Select(entry => entry.Message).ToList(),
            Has.One.Contains("is dead after 3 attempts").After(5000, 10));
    }

    [Test]
    public async Task TaskOfADispatcherThatDiedMidDeliveryIsDeliveredAgainAfterItsLeaseExpires()
    {
        var leaseDuration = TimeSpan.FromMinutes(10);
        var firstQueue = _files.NewQueue();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var neverFinishes = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var crashed = new TaskQueueDispatcher(
            firstQueue,
            [new TaskQueueHandler(Queue, async (_, _) =>
            {
                started.TrySetResult();
                await neverFinishes.Task; // ignores cancellation, like a process that was killed
            })],
            _files.Clock,
            NullLogger<TaskQueueDispatcher>.Instance,
            new TaskQueueDispatcherOptions { LeaseDuration = leaseDuration });
        await crashed.StartAsync(Guard);
        try
        {
            await TheDeadDispatchersTaskIsRedeliveredAsync(crashed, firstQueue, started, leaseDuration);
        }
        finally
        {
            neverFinishes.TrySetResult();
        }

        // The orphaned delivery finishing late must not disturb anything.
        await crashed.ExecuteTask!.WaitAsync(Guard);
        Assert.That((await firstQueue.GetStatsAsync()).For(Queue).Total, Is.Zero);
    }

    private async Task TheDeadDispatchersTaskIsRedeliveredAsync(
        TaskQueueDispatcher crashed, SqliteTaskQueue firstQueue, TaskCompletionSource started, TimeSpan leaseDuration)
    {
        await firstQueue.EnqueueAsync(Queue, new { chunk = 9 });
        await started.Task.WaitAsync(Guard);
        crashed.Dispose();

        var restartedDatabase = _files.Open();
        var restartedQueue = _files.NewQueue(restartedDatabase);
        var redelivered = new ConcurrentQueue<QueuedTask>();
        var restarted = await StartDispatcherAsync(restartedQueue, new TaskQueueHandler(Queue, (task, _) =>
        {
            redelivered.Enqueue(task);
            return Task.CompletedTask;
        }), leaseDuration);
        Assert.That((await restartedQueue.GetStatsAsync()).For(Queue).Running, Is.EqualTo(1), "still leased to the dead dispatcher");

        _files.Clock.Advance(leaseDuration);
        await WaitUntilIdleAsync(restarted);

        Assert.That(redelivered, Has.Count.EqualTo(1));
        Assert.That(redelivered.Single().RetryCount, Is.EqualTo(1));
        Assert.That(redelivered.Single().Payload.GetProperty("chunk").GetInt32(), Is.EqualTo(9));
        Assert.That((await restartedQueue.GetStatsAsync()).For(Queue).Total, Is.Zero);
    }

    [Test]
    public async Task NoMoreThanTheQueuesConcurrencyLimitRunAtOnce()
    {
        var queue = _files.NewQueue();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var twoStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = 0;
        var mostRunning = 0;
        var dispatcher = await StartDispatcherAsync(queue, new TaskQueueHandler(Queue, async (_, _) =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref mostRunning, now);
            if (now == 2)
            {
                twoStarted.TrySetResult();
            }

            await gate.Task;
            Interlocked.Decrement(ref running);
        }, new TaskQueueSettings(RetryPolicy.Default, MaxConcurrentDeliveries: 2)));

        for (var i = 0; i < 6; i++)
        {
            await queue.EnqueueAsync(Queue, new { chunk = i });
        }

        QueueTaskCounts whileBlocked;
        try
        {
            await twoStarted.Task.WaitAsync(Guard);
            whileBlocked = (await queue.GetStatsAsync()).For(Queue);
        }
        finally
        {
            gate.SetResult();
        }

        Assert.That(whileBlocked.Running, Is.EqualTo(2));
        Assert.That(whileBlocked.PendingDue, Is.EqualTo(4));
        await WaitUntilIdleAsync(dispatcher);
        Assert.That(mostRunning, Is.EqualTo(2));
        Assert.That((await queue.GetStatsAsync()).For(Queue).Total, Is.Zero);
    }

    [Test]
    public async Task WaitUntilIdleWaitsForTheRunningTask()
    {
        var queue = _files.NewQueue();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var finished = false;
        var dispatcher = await StartDispatcherAsync(queue, new TaskQueueHandler(Queue, async (_, _) =>
        {
            started.TrySetResult();
            await gate.Task;
            finished = true;
        }));

        await queue.EnqueueAsync(Queue, new { chunk = 1 });
        await started.Task.WaitAsync(Guard);
        var idle = WaitUntilIdleAsync(dispatcher);
        Assert.That(idle.IsCompleted, Is.False);

        gate.SetResult();
        await idle;
        Assert.That(finished, Is.True);
        Assert.That((await queue.GetStatsAsync()).For(Queue).Total, Is.Zero);
    }

    [Test]
    public async Task QueueWithoutAHandlerKeepsItsTasks()
    {
        var queue = _files.NewQueue();
        var dispatcher = await StartDispatcherAsync(queue, new TaskQueueHandler(Queue, (_, _) => Task.CompletedTask));

        await queue.EnqueueAsync("datapointWriteTask", new { imagePath = "a.jpg" });
        await queue.EnqueueAsync(Queue, new { chunk = 1 });
        await WaitUntilIdleAsync(dispatcher);

        var stats = await queue.GetStatsAsync();
        Assert.That(stats.For("datapointWriteTask").PendingDue, Is.EqualTo(1));
        Assert.That(stats.For(Queue).Total, Is.Zero);
    }

    [Test]
    public async Task TasksSurviveReopeningTheFile()
    {
        var queue = _files.NewQueue();
        await queue.EnqueueAsync(Queue, new { chunk = 5 }, new TaskOptions(Id: "survivor"));
        await queue.EnqueueAsync(Queue, new { chunk = 6 }, new TaskOptions(Delay: TimeSpan.FromHours(1)));

        var reopenedQueue = _files.NewQueue(_files.Reopen());
        Assert.That(await reopenedQueue.EnqueueAsync(Queue, new { chunk = 5 }, new TaskOptions(Id: "survivor")), Is.False);
        Assert.That((await reopenedQueue.GetStatsAsync()).For(Queue), Is.EqualTo(new QueueTaskCounts(Queue, 1, 1, 0, 0)));

        var delivered = new ConcurrentQueue<int>();
        var dispatcher = await StartDispatcherAsync(reopenedQueue, new TaskQueueHandler(Queue, (task, _) =>
        {
            delivered.Enqueue(task.Payload.GetProperty("chunk").GetInt32());
            return Task.CompletedTask;
        }));
        await WaitUntilIdleAsync(dispatcher);
        _files.Clock.Advance(TimeSpan.FromHours(1));
        await WaitUntilIdleAsync(dispatcher);

        Assert.That(delivered, Is.EqualTo(new[] { 5, 6 }));
    }

    [Test]
    public async Task StoppingTheDispatcherGivesAnInterruptedTaskBackWithoutCountingTheAttempt()
    {
        var queue = _files.NewQueue();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var dispatcher = await StartDispatcherAsync(queue, new TaskQueueHandler(Queue, async (_, cancellationToken) =>
        {
            started.TrySetResult();
            await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
        }));
        await queue.EnqueueAsync(Queue, new { chunk = 1 });
        await started.Task.WaitAsync(Guard);

        await dispatcher.StopAsync(Guard);

        var leased = await queue.LeaseDueAsync(Queue, 10, TimeSpan.FromMinutes(1), RetryPolicy.Default, LeaseOwner.Current, Guard);
        Assert.That(leased.Leased.Select(lease => lease.Task.RetryCount), Is.EqualTo(new[] { 0 }));
    }

    [Test]
    public async Task ATaskLeasedByAProcessThatHasEndedIsDeliveredAtOnceAndOneHeldByALiveProcessIsNot()
    {
        var queue = _files.NewQueue();
        await queue.EnqueueAsync(Queue, new { chunk = 1 });
        await queue.EnqueueAsync(Queue, new { chunk = 2 });
        // No process has this id (Linux ids stay below 2^22): its holder was killed.
        var ended = LeaseOwner.Describe(Environment.MachineName, int.MaxValue, DateTime.UtcNow.Ticks);
        using var init = System.Diagnostics.Process.GetProcessById(1);
        var alive = LeaseOwner.Describe(Environment.MachineName, 1, LeaseOwner.StartTicks(init));
        Assert.That((await queue.LeaseDueAsync(Queue, 1, TimeSpan.FromMinutes(30), RetryPolicy.Default, alive, Guard)).Leased, Has.Count.EqualTo(1));
        Assert.That((await queue.LeaseDueAsync(Queue, 1, TimeSpan.FromMinutes(30), RetryPolicy.Default, ended, Guard)).Leased, Has.Count.EqualTo(1));

        var delivered = new ConcurrentQueue<QueuedTask>();
        await StartDispatcherAsync(queue, new TaskQueueHandler(Queue, (task, _) =>
        {
            delivered.Enqueue(task);
            return Task.CompletedTask;
        }));
        while (delivered.IsEmpty)
        {
            await Task.Delay(10, Guard);
        }

        await Task.Delay(200); // The live holder's task must stay with it.

        Assert.That(delivered.Select(task => (task.Payload.GetProperty("chunk").GetInt32(), task.RetryCount)), Is.EqualTo(new[] { (2, 1) }));
        Assert.That((await queue.GetStatsAsync(Guard)).Outstanding, Is.EqualTo(1), "the live holder's lease stands");
    }

    private Task<TaskQueueDispatcher> StartDispatcherAsync(SqliteTaskQueue queue, TaskQueueHandler handler, TimeSpan? leaseDuration = null) =>
        StartDispatcherAsync(queue, NullLogger<TaskQueueDispatcher>.Instance, handler, leaseDuration);

    private async Task<TaskQueueDispatcher> StartDispatcherAsync(
        SqliteTaskQueue queue, ILogger<TaskQueueDispatcher> logger, TaskQueueHandler handler, TimeSpan? leaseDuration = null)
    {
        var options = new TaskQueueDispatcherOptions { LeaseDuration = leaseDuration ?? TimeSpan.FromMinutes(30) };
        var dispatcher = new TaskQueueDispatcher(queue, [handler], _files.Clock, logger, options);
        _dispatchers.Add(dispatcher);
        _dispatched[dispatcher] = (queue, handler.Queue);
        await dispatcher.StartAsync(Guard);
        return dispatcher;
    }

    /// <summary>
    /// Completes when no task of the dispatcher's queue is running or due now (tasks scheduled for later do not
    /// count), as the queue's own counts tell. Only a running dispatcher makes progress towards idle.
    /// </summary>
    private async Task WaitUntilIdleAsync(TaskQueueDispatcher dispatcher)
    {
        var (queue, handled) = _dispatched[dispatcher];
        while ((await queue.GetStatsAsync(Guard)).For(handled) is { PendingDue: > 0 } or { Running: > 0 })
        {
            await Task.Delay(TimeSpan.FromMilliseconds(10), Guard);
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
