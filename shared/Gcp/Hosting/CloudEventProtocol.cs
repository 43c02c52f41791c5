using CloudNative.CloudEvents;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>What to do with one CloudEvent: run the handler, or acknowledge it unhandled and say why.</summary>
internal sealed record EventRoute(Func<CancellationToken, Task>? Handle, string? IgnoredBecause)
{
    public static EventRoute Run(Func<CancellationToken, Task> handle) => new(handle, null);

    public static EventRoute Ignore(string reason) => new(null, reason);
}

/// <summary>
/// Eventarc deliveries: the CloudEvent is read and routed (decoded for the function, or ignored), the handler
/// runs, and the outcome maps to HTTP: 204 acknowledges; 400 for a request that is not a decodable event;
/// a handler failure answers 500 so a trigger with a retry policy delivers again.
/// </summary>
internal sealed partial class CloudEventProtocol(Func<CloudEvent, EventRoute> route, ILogger logger)
{
    public async Task HandleAsync(HttpContext context)
    {
        EventRoute decided;
        CloudEvent cloudEvent;
        try
        {
            cloudEvent = await CloudEventReader.ReadAsync(context.Request);
            decided = route(cloudEvent);
        }
        catch (FormatException e)
        {
            await FunctionErrorResponses.WriteFailureAsync(
                context.Response, new FunctionException(FunctionErrorCode.InvalidArgument, e.Message), logger);
            return;
        }

        if (decided.Handle is null)
        {
            LogIgnored(logger, cloudEvent.Type, cloudEvent.Id, decided.IgnoredBecause);
        }
        else
        {
            try
            {
                await decided.Handle(context.RequestAborted);
            }
            catch (Exception e)
            {
                await FunctionErrorResponses.WriteFailureAsync(context.Response, e, logger);
                return;
            }
        }

        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Acknowledged CloudEvent {EventType} {EventId} without handling it: {Reason}")]
    private static partial void LogIgnored(ILogger logger, string? eventType, string? eventId, string? reason);
}
