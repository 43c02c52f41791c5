using System.Text.Json;
using Microsoft.Data.Sqlite;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.Database;

namespace ReverseImageSearch.Local.Tasks;

public sealed class SqliteTaskQueueOptions
{
    /// <summary>How long a de-duplication id is refused again after its task was enqueued or finished.</summary>
    public TimeSpan DedupIdRetention { get; init; } = TimeSpan.FromHours(24);
}

/// <summary>
/// The durable local task queue: tasks are rows of the local database, delivered by a
/// <see cref="TaskQueueDispatcher"/>. Also carries the local events (<see cref="LocalEventQueues"/>).
/// </summary>
public sealed class SqliteTaskQueue : ITaskQueue
{
    private const int MaxDedupIdLength = 500;
    private const int MaxStoredErrorLength = 8000;

    private readonly LocalDatabase _database;
    private readonly TimeProvider _timeProvider;
    private readonly SqliteTaskQueueOptions _options;

    public SqliteTaskQueue(LocalDatabase database, TimeProvider timeProvider, SqliteTaskQueueOptions? options = null)
    {
        _database = database;
        _timeProvider = timeProvider;
        _options = options ?? new SqliteTaskQueueOptions();
    }

    /// <summary>Raised with the queue name after a task was committed, so dispatchers wake at once.</summary>
    public event Action<string>? TaskEnqueued;

    public async Task<bool> EnqueueAsync(string functionName, JsonElement payload, TaskOptions? options = null, CancellationToken cancellationToken = default)
    {
        var payloadJson = payload.GetRawText();
        return await _database.WriteAsync(write => EnqueueWithin(write, functionName, payloadJson, options), cancellationToken);
    }

    /// <summary>Enqueues as part of a write the caller is making, so the task commits (or not) with it.</summary>
    internal bool EnqueueWithin(LocalWrite write, string queue, string payloadJson, TaskOptions? taskOptions)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(queue);
        var dedupId = taskOptions?.Id;
        if (dedupId is not null)
        {
            ValidateDedupId(dedupId);
        }

        var delay = taskOptions?.Delay ?? TimeSpan.Zero;
        var now = _timeProvider.GetUtcNow().UtcTicks;
        if (dedupId is not null && !RememberDedupId(write, queue, dedupId, now))
        {
            return false;
        }

        using var insert = write.Command("""
            INSERT INTO tasks (queue, name, payload, dedup_id, enqueue_time, schedule_time, state)
            VALUES ($queue, $name, $payload, $dedupId, $now, $scheduleTime, 'pending')
            """);
        insert.Parameters.AddWithValue("$queue", queue);
        insert.Parameters.AddWithValue("$name", $"queues/{queue}/tasks/{dedupId ?? Guid.NewGuid().ToString("N")}");
        insert.Parameters.AddWithValue("$payload", payloadJson);
        insert.Parameters.AddWithValue("$dedupId", (object?)dedupId ?? DBNull.Value);
        insert.Parameters.AddWithValue("$now", now);
        insert.Parameters.AddWithValue("$scheduleTime", now + Math.Max(0, delay.Ticks));
        insert.ExecuteNonQuery();
        write.AfterCommit(() => TaskEnqueued?.Invoke(queue));
        return true;
    }

    /// <summary>Counts of tasks per queue and state, as of now.</summary>
    public Task<TaskQueueStats> GetStatsAsync(CancellationToken cancellationToken = default)
    {
        var now = _timeProvider.GetUtcNow().UtcTicks;
        return _database.ReadAsync(connection =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = """
                SELECT queue,
                    SUM(CASE WHEN (state = 'pending' AND schedule_time <= $now) OR (state = 'leased' AND lease_until <= $now) THEN 1 ELSE 0 END),
                    SUM(CASE WHEN state = 'pending' AND schedule_time > $now THEN 1 ELSE 0 END),
                    SUM(CASE WHEN state = 'leased' AND lease_until > $now THEN 1 ELSE 0 END),
                    SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END)
                FROM tasks GROUP BY queue
                """;
            command.Parameters.AddWithValue("$now", now);
            var counts = new Dictionary<string, QueueTaskCounts>(StringComparer.Ordinal);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var queue = reader.GetString(0);
                counts[queue] = new QueueTaskCounts(queue, reader.GetInt32(1), reader.GetInt32(2), reader.GetInt32(3), reader.GetInt32(4));
            }

            return new TaskQueueStats(counts);
        }, cancellationToken);
    }

    /// <summary>The tasks that exhausted their attempts, oldest first; all queues when <paramref name="queue"/> is null.</summary>
    public Task<IReadOnlyList<DeadTask>> GetDeadTasksAsync(string? queue = null, CancellationToken cancellationToken = default) =>
        _database.ReadAsync<IReadOnlyList<DeadTask>>(connection =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = """
                SELECT id, queue, name, payload, attempts, last_error, enqueue_time FROM tasks
                WHERE state = 'dead' AND ($queue IS NULL OR queue = $queue) ORDER BY id
                """;
            command.Parameters.AddWithValue("$queue", (object?)queue ?? DBNull.Value);
            var dead = new List<DeadTask>();
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                dead.Add(new DeadTask(
                    reader.GetInt64(0),
                    reader.GetString(1),
                    reader.GetString(2),
                    ParsePayload(reader.GetString(3)),
                    reader.GetInt32(4),
                    reader.IsDBNull(5) ? null : reader.GetString(5),
                    new DateTimeOffset(reader.GetInt64(6), TimeSpan.Zero)));
            }

            return dead;
        }, cancellationToken);

    /// <summary>
    /// Leases up to <paramref name="limit"/> due tasks of <paramref name="queue"/> for <paramref name="owner"/>
    /// (including tasks whose lease expired, or whose holder process has ended) and counts the attempt. An
    /// abandoned task with no attempts left is marked dead instead.
    /// </summary>
    internal Task<LeaseBatch> LeaseDueAsync(string queue, int limit, TimeSpan leaseDuration, RetryPolicy policy, string owner, CancellationToken cancellationToken) =>
        _database.WriteAsync(write =>
        {
            var now = _timeProvider.GetUtcNow().UtcTicks;
            ExpireLeasesOfEndedProcesses(write, queue, owner, now);
            var candidates = new List<(long Id, string Name, string Payload, int Attempts)>();
            using (var select = write.Command("""
                SELECT id, name, payload, attempts FROM tasks
                WHERE queue = $queue AND ((state = 'pending' AND schedule_time <= $now) OR (state = 'leased' AND lease_until <= $now))
                ORDER BY schedule_time, id LIMIT $limit
                """))
            {
                select.Parameters.AddWithValue("$queue", queue);
                select.Parameters.AddWithValue("$now", now);
                select.Parameters.AddWithValue("$limit", limit);
                using var reader = select.ExecuteReader();
                while (reader.Read())
                {
                    candidates.Add((reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetInt32(3)));
                }
            }

            var leased = new List<TaskLease>();
            var expired = new List<ExpiredTask>();
            foreach (var candidate in candidates)
            {
                if (policy.IsExhausted(candidate.Attempts))
                {
                    // Only a delivery that never reported back leaves a task here with no attempts left.
                    MarkDead(write, candidate.Id, $"Attempt {candidate.Attempts} did not finish within its lease (its process ended or the handler ran too long).");
                    expired.Add(new ExpiredTask(candidate.Id, queue, candidate.Name, candidate.Attempts));
                    continue;
                }

                var token = Guid.NewGuid().ToString("N");
                using var lease = write.Command("""
                    UPDATE tasks SET state = 'leased', attempts = attempts + 1, lease_until = $leaseUntil, lease_token = $token, lease_owner = $owner
                    WHERE id = $id
                    """);
                lease.Parameters.AddWithValue("$owner", owner);
                lease.Parameters.AddWithValue("$leaseUntil", now + leaseDuration.Ticks);
                lease.Parameters.AddWithValue("$token", token);
                lease.Parameters.AddWithValue("$id", candidate.Id);
                lease.ExecuteNonQuery();
                leased.Add(new TaskLease(new QueuedTask(candidate.Id, queue, candidate.Name, ParsePayload(candidate.Payload), candidate.Attempts), token));
            }

            return new LeaseBatch(leased, expired);
        }, cancellationToken);

    /// <summary>Removes a delivered task; its de-duplication id stays remembered. False when the lease was lost.</summary>
    internal Task<bool> CompleteAsync(TaskLease lease) =>
        _database.WriteAsync(write =>
        {
            using var delete = write.Command("DELETE FROM tasks WHERE id = $id AND lease_token = $token RETURNING queue, dedup_id");
            delete.Parameters.AddWithValue("$id", lease.Task.Id);
            delete.Parameters.AddWithValue("$token", lease.Token);
            string? queue = null;
            string? dedupId = null;
            var deleted = false;
            using (var reader = delete.ExecuteReader())
            {
                if (reader.Read())
                {
                    deleted = true;
                    queue = reader.GetString(0);
                    dedupId = reader.IsDBNull(1) ? null : reader.GetString(1);
                }
            }

            if (queue is not null && dedupId is not null)
            {
                using var remember = write.Command("""
                    UPDATE task_dedup_ids SET remember_until = MAX(remember_until, $until) WHERE queue = $queue AND dedup_id = $dedupId
                    """);
                remember.Parameters.AddWithValue("$until", _timeProvider.GetUtcNow().UtcTicks + _options.DedupIdRetention.Ticks);
                remember.Parameters.AddWithValue("$queue", queue);
                remember.Parameters.AddWithValue("$dedupId", dedupId);
                remember.ExecuteNonQuery();
            }

            return deleted;
        }, CancellationToken.None);

    /// <summary>Records a failed attempt: scheduled again at <paramref name="retryAt"/>, or dead when null. False when the lease was lost.</summary>
    internal Task<bool> FailAsync(TaskLease lease, string error, DateTimeOffset? retryAt) =>
        _database.WriteAsync(write =>
        {
            using var update = write.Command("""
                UPDATE tasks SET state = $state, schedule_time = COALESCE($retryAt, schedule_time), last_error = $error,
                    lease_until = NULL, lease_token = NULL
                WHERE id = $id AND lease_token = $token
                """);
            update.Parameters.AddWithValue("$state", retryAt is null ? "dead" : "pending");
            update.Parameters.AddWithValue("$retryAt", retryAt is { } at ? at.UtcTicks : DBNull.Value);
            update.Parameters.AddWithValue("$error", Truncate(error));
            update.Parameters.AddWithValue("$id", lease.Task.Id);
            update.Parameters.AddWithValue("$token", lease.Token);
            return update.ExecuteNonQuery() == 1;
        }, CancellationToken.None);

    /// <summary>Gives back a task whose delivery was interrupted by shutdown: due again at once, the attempt not counted.</summary>
    internal Task<bool> ReleaseAsync(TaskLease lease) =>
        _database.WriteAsync(write =>
        {
            using var update = write.Command("""
                UPDATE tasks SET state = 'pending', schedule_time = $now, attempts = attempts - 1, lease_until = NULL, lease_token = NULL
                WHERE id = $id AND lease_token = $token
                """);
            update.Parameters.AddWithValue("$now", _timeProvider.GetUtcNow().UtcTicks);
            update.Parameters.AddWithValue("$id", lease.Task.Id);
            update.Parameters.AddWithValue("$token", lease.Token);
            return update.ExecuteNonQuery() == 1;
        }, CancellationToken.None);

    /// <summary>The earliest time a task of these queues becomes due (or its lease expires); null when none waits.</summary>
    internal Task<DateTimeOffset?> NextDueTimeAsync(IReadOnlyCollection<string> queues, CancellationToken cancellationToken) =>
        queues.Count == 0
            ? Task.FromResult<DateTimeOffset?>(null)
            : _database.ReadAsync(connection =>
            {
                using var command = connection.CreateCommand();
                command.CommandText = $"""
                    SELECT MIN(CASE WHEN state = 'pending' THEN schedule_time ELSE lease_until END) FROM tasks
                    WHERE state IN ('pending', 'leased') AND queue IN ({AddQueueParameters(command, queues)})
                    """;
                var result = command.ExecuteScalar();
                return result is long ticks ? new DateTimeOffset(ticks, TimeSpan.Zero) : (DateTimeOffset?)null;
            }, cancellationToken);

    /// <summary>
    /// A lease held by a process that has ended (killed, crashed) would otherwise keep its task for the whole
    /// lease; it ends now, so the task is due at once and the restarted process finishes the work.
    /// </summary>
    private static void ExpireLeasesOfEndedProcesses(LocalWrite write, string queue, string owner, long now)
    {
        var others = new List<string>();
        using (var select = write.Command("""
            SELECT DISTINCT lease_owner FROM tasks
            WHERE queue = $queue AND state = 'leased' AND lease_until > $now AND lease_owner IS NOT NULL AND lease_owner <> $owner
            """))
        {
            select.Parameters.AddWithValue("$queue", queue);
            select.Parameters.AddWithValue("$now", now);
            select.Parameters.AddWithValue("$owner", owner);
            using var reader = select.ExecuteReader();
            while (reader.Read())
            {
                others.Add(reader.GetString(0));
            }
        }

        foreach (var ended in others.Where(LeaseOwner.IsGone))
        {
            using var expire = write.Command("UPDATE tasks SET lease_until = $now WHERE queue = $queue AND state = 'leased' AND lease_owner = $ended");
            expire.Parameters.AddWithValue("$now", now);
            expire.Parameters.AddWithValue("$queue", queue);
            expire.Parameters.AddWithValue("$ended", ended);
            expire.ExecuteNonQuery();
        }
    }

    private bool RememberDedupId(LocalWrite write, string queue, string dedupId, long now)
    {
        // Forget ids whose time is up, so the table stays as small as the retention window.
        using (var purge = write.Command("DELETE FROM task_dedup_ids WHERE remember_until <= $now"))
        {
            purge.Parameters.AddWithValue("$now", now);
            purge.ExecuteNonQuery();
        }

        // A task that still exists keeps its id taken even past the retention window (long delays).
        using (var existing = write.Command("SELECT EXISTS (SELECT 1 FROM tasks WHERE queue = $queue AND dedup_id = $dedupId)"))
        {
            existing.Parameters.AddWithValue("$queue", queue);
            existing.Parameters.AddWithValue("$dedupId", dedupId);
            if ((long)existing.ExecuteScalar()! == 1)
            {
                return false;
            }
        }

        using var remember = write.Command("""
            INSERT INTO task_dedup_ids (queue, dedup_id, remember_until) VALUES ($queue, $dedupId, $until)
            ON CONFLICT (queue, dedup_id) DO NOTHING
            """);
        remember.Parameters.AddWithValue("$queue", queue);
        remember.Parameters.AddWithValue("$dedupId", dedupId);
        remember.Parameters.AddWithValue("$until", now + _options.DedupIdRetention.Ticks);
        return remember.ExecuteNonQuery() == 1;
    }

    private static void MarkDead(LocalWrite write, long id, string error)
    {
        using var update = write.Command("UPDATE tasks SET state = 'dead', last_error = $error, lease_until = NULL, lease_token = NULL WHERE id = $id");
        update.Parameters.AddWithValue("$error", error);
        update.Parameters.AddWithValue("$id", id);
        update.ExecuteNonQuery();
    }

    private static string AddQueueParameters(SqliteCommand command, IReadOnlyCollection<string> queues)
    {
        var names = new List<string>(queues.Count);
        foreach (var queue in queues)
        {
            var name = "$q" + names.Count;
            command.Parameters.AddWithValue(name, queue);
            names.Add(name);
        }

        return string.Join(", ", names);
    }

    private static void ValidateDedupId(string dedupId)
    {
        if (dedupId.Length is 0 or > MaxDedupIdLength || !dedupId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            throw new ArgumentException(
                $"Task id '{dedupId}' is invalid: use 1 to {MaxDedupIdLength} letters, digits, '-' or '_'.", nameof(dedupId));
        }
    }

    private static JsonElement ParsePayload(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private static string Truncate(string error) =>
        error.Length <= MaxStoredErrorLength ? error : error[..MaxStoredErrorLength] + " [truncated]";
}
