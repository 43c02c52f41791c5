using CloudNative.CloudEvents;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>What to do with one CloudEvent: run the handler, or acknowledge it unhandled and say why.</summary>
internal sealed record EventRoute(Func<CancellationToken, Task>? Handle, string? IgnoredBecause)
{
    public static EventRoute Run(Func<CancellationToken, Task> handle) => new(handle, null);

    public static EventRoute Ignore(string reason) => new(null, reason);
}

/// <summary>
/// Eventarc deliveries: the CloudEvent is read and routed (decoded for the function, or ignored), the handler
/// runs, and the outcome maps to HTTP: 204 acknowledges; a handler failure answers 500 so a trigger with a retry
/// policy delivers again. A request that is not a decodable event can never succeed, however often it comes:
/// it is logged as an error (with the event's type and id when known) and acknowledged with 204, so --retry does
/// not redeliver it for a day.
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
            LogUndecodable(logger, context.Request.Headers["ce-type"].ToString(), context.Request.Headers["ce-id"].ToString(), e.Message);
            context.Response.StatusCode = StatusCodes.Status204NoContent;
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

    [LoggerMessage(Level = LogLevel.Error, Message = "Acknowledged an undecodable CloudEvent {EventType} {EventId} without handling it (redelivery cannot help): {Reason}")]
    private static partial void LogUndecodable(ILogger logger, string eventType, string eventId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Acknowledged CloudEvent {EventType} {EventId} without handling it: {Reason}")]
    private static partial void LogIgnored(ILogger logger, string? eventType, string? eventId, string? reason);
}
