using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Core.Coordination;

public static class OperationPolling
{
    /// <summary>
    /// Polls a long-running operation until it is done, waiting 1 s, then longer, up to 15 s between looks.
    /// Throws TimeoutException after <paramref name="timeout"/>.
    /// </summary>
    public static async Task<LongRunningOperation> WaitUntilDoneAsync(
        this IVectorIndexService service,
        LongRunningOperation operation,
        TimeProvider clock,
        TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        var deadline = clock.GetUtcNow() + timeout;
        var pause = TimeSpan.FromSeconds(1);
        while (!operation.Done)
        {
            if (clock.GetUtcNow() >= deadline)
            {
                throw new TimeoutException($"Operation {operation.Name} was not done after {timeout}.");
            }

            await Task.Delay(pause, clock, cancellationToken);
            pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, TimeSpan.FromSeconds(15).Ticks));
            operation = await service.GetOperationAsync(operation.Name, cancellationToken);
        }

        return operation;
    }
}
