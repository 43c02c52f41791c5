using System.Globalization;
using System.Text.Json;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Gcp.Http;

namespace ReverseImageSearch.Gcp.Tasks;

/// <summary>
/// <see cref="ITaskQueue"/> over Cloud Tasks v2, the way Firebase task-queue functions enqueue:
/// queue ext-{instance}-{function}, an HTTP POST of <c>{"data": payload}</c> to the function's URL, signed with an OIDC token.
/// </summary>
public sealed class CloudTasksQueue(
    GoogleRestClient client,
    GcpEndpoints endpoints,
    GcpAdapterOptions adapterOptions,
    ExtensionOptions extension,
    IServiceAccountEmailSource serviceAccount,
    TimeProvider time) : ITaskQueue
{
    public string QueuePath(string functionName) =>
        $"projects/{extension.ProjectId}/locations/{extension.Location}/queues/{extension.DeployedFunctionName(functionName)}";

    public string FunctionUrl(string functionName) =>
        endpoints.FunctionUrlFor(extension.Location, extension.ProjectId, extension.DeployedFunctionName(functionName));

    public async Task<bool> EnqueueAsync(string functionName, JsonElement payload, TaskOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(functionName);
        var queue = QueuePath(functionName);
        var body = JsonSerializer.SerializeToUtf8Bytes(new TaskBody(payload), GcpJson.Options);
        string? name = null;
        if (options?.Id is { } id)
        {
            if (id.Length is 0 or > 500 || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                throw new ArgumentException($"Task id '{id}' must be 1-500 letters, digits, '-' or '_'.", nameof(options));
            }

            name = $"{queue}/tasks/{id}";
        }

        var task = new TaskResource(
            Name: name,
            ScheduleTime: options?.Delay is { } delay && delay > TimeSpan.Zero
                ? time.GetUtcNow().Add(delay).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)
                : null,
            DispatchDeadline: adapterOptions.TaskDispatchDeadline is { } deadline
                ? ((long)deadline.TotalSeconds).ToString(CultureInfo.InvariantCulture) + "s"
                : null,
            HttpRequest: new HttpRequestResource(
                HttpMethod: "POST",
                Url: FunctionUrl(functionName),
                Headers: new Dictionary<string, string> { ["Content-Type"] = "application/json" },
                Body: Convert.ToBase64String(body),
                OidcToken: new OidcTokenResource(await serviceAccount.GetEmailAsync(cancellationToken))));
        try
        {
            await client.SendJsonAsync(
                HttpMethod.Post,
                new Uri($"{endpoints.CloudTasksBase.ToString().TrimEnd('/')}/{queue}/tasks"),
                new CreateTaskRequest(task),
                cancellationToken);
            return true;
        }
        catch (ServiceException e) when (e.IsAlreadyExists && name is not null)
        {
            return false;
        }
        catch (ServiceException e) when (e.IsNotFound)
        {
            throw new ServiceException(
                e.HttpStatus,
                e.Status,
                $"Cloud Tasks queue {queue} does not exist. Run ./deploy.sh, which creates the task queues. ({e.ServiceMessage})",
                e);
        }
    }

    private sealed record TaskBody(JsonElement Data);

    private sealed record CreateTaskRequest(TaskResource Task);

    private sealed record TaskResource(string? Name, string? ScheduleTime, string? DispatchDeadline, HttpRequestResource HttpRequest);

    private sealed record HttpRequestResource(string HttpMethod, string Url, Dictionary<string, string> Headers, string Body, OidcTokenResource OidcToken);

    private sealed record OidcTokenResource(string ServiceAccountEmail);
}
