using System.Text.Json;

namespace ReverseImageSearch.Core.Ports;

/// <param name="Delay">Deliver no earlier than this from now.</param>
/// <param name="Id">De-duplication id: a second enqueue with the same id (while the first is remembered) is dropped.
/// Characters: letters, digits, '-' and '_', at most 500.</param>
public sealed record TaskOptions(TimeSpan? Delay = null, string? Id = null);

/// <summary>
/// Queues of tasks for the task-queue functions (Cloud Tasks, or SQLite locally): one queue per function,
/// named by the function (for example "backfillTask"). Delivery is at least once, with retries.
/// </summary>
public interface ITaskQueue
{
    /// <summary>Enqueues <paramref name="payload"/> for <paramref name="functionName"/>; false when
    /// <see cref="TaskOptions.Id"/> was already used (the task exists or ran recently).</summary>
    Task<bool> EnqueueAsync(string functionName, JsonElement payload, TaskOptions? options = null, CancellationToken cancellationToken = default);
}

public static class TaskQueueExtensions
{
    public static Task<bool> EnqueueAsync<T>(this ITaskQueue queue, string functionName, T payload, TaskOptions? options = null, CancellationToken cancellationToken = default) =>
        queue.EnqueueAsync(functionName, JsonSerializer.SerializeToElement(payload, CoreJson.Options), options, cancellationToken);
}
