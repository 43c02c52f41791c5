using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>
/// Cloud Tasks HTTP-target deliveries to an <see cref="ITaskFunction"/>: the callable request shape, 204 on
/// success, an error status (so Cloud Tasks retries) otherwise. Authorization is left to Cloud Run's IAM.
/// </summary>
internal sealed class TaskProtocol(ITaskFunction function, ILogger logger)
{
    public const string TaskNameHeader = "X-CloudTasks-TaskName";
    public const string RetryCountHeader = "X-CloudTasks-TaskRetryCount";

    public async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        using var data = await ProtocolRequest.TryReadDataAsync(request);
        if (data is null)
        {
            await FunctionErrorResponses.WriteBadRequestAsync(context.Response);
            return;
        }

        var taskName = request.Headers[TaskNameHeader].ToString();
        var retryCount = int.TryParse(request.Headers[RetryCountHeader].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var count)
            ? count
            : 0;
        Telemetry.CountDelivery(function.GetType().Name, retryCount);
        try
        {
            await function.HandleAsync(new TaskDelivery(data.Data, taskName.Length > 0 ? taskName : null, retryCount), context.RequestAborted);
        }
        catch (Exception e)
        {
            await FunctionErrorResponses.WriteFailureAsync(context.Response, e, logger);
            return;
        }

        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }
}
