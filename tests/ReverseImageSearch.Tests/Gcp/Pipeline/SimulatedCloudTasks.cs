using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp.Pipeline;

/// <summary>
/// Cloud Tasks for the simulated cloud: tasks.create (through the contract server) on the queues deploy.sh creates,
/// named tasks de-duplicated (409 ALREADY_EXISTS), then each task dispatched like Cloud Tasks does: at its
/// scheduleTime, a POST of the decoded body with the task's headers plus X-CloudTasks-*, to the function host its
/// https://{LOCATION}-{PROJECT_ID}.cloudfunctions.net/{queue} URL names; non-2xx answers are retried with backoff.
/// </summary>
public sealed class SimulatedCloudTasks : IAsyncDisposable
{
    public const int MaxAttempts = 12;

    private readonly ConcurrentDictionary<string, byte> _names = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<Task> _dispatches = new();
    private readonly CancellationTokenSource _stop = new();
    private int _disposed;
    private readonly string _functionsHost;
    private readonly string _queuePrefix;
    private readonly IReadOnlySet<string> _queues;
    private int _pending;

    /// <param name="taskFunctions">The task-queue functions; deploy.sh creates one queue ext-{instance}-{function} each.</param>
    public SimulatedCloudTasks(ContractServer server, string projectId, string location, string instanceId, IEnumerable<string> taskFunctions)
    {
        _functionsHost = $"{location}-{projectId}.cloudfunctions.net";
        _queuePrefix = $"projects/{projectId}/locations/{location}/queues/";
        _queues = taskFunctions.Select(f => $"ext-{instanceId}-{f}").ToHashSet(StringComparer.Ordinal);
        InstancePrefix = $"ext-{instanceId}-";
        server.Handle("cloudtasks.projects.locations.queues.tasks.create", Create);
    }

    public string InstancePrefix { get; }

    /// <summary>Where tasks are delivered; set once the functions are up.</summary>
    public FunctionHosts? Hosts { get; set; }

    public HttpClient Http { get; set; } = null!;

    public ConcurrentQueue<Delivery> Deliveries { get; } = new();

    public ConcurrentQueue<string> Problems { get; } = new();

    /// <summary>Tasks created and not yet answered 2xx (nor given up).</summary>
    public int Pending => Volatile.Read(ref _pending);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stop.CancelAsync();
        while (_dispatches.TryDequeue(out var dispatch))
        {
            try
            {
                await dispatch;
            }
            catch (OperationCanceledException)
            {
            }
        }

        _stop.Dispose();
    }

    private Reply Create(RecordedRequest r)
    {
        // POST /v2/projects/{p}/locations/{l}/queues/{q}/tasks
        var parent = r.RawPath["/v2/".Length..^"/tasks".Length];
        var queue = parent.StartsWith(_queuePrefix, StringComparison.Ordinal) ? parent[_queuePrefix.Length..] : "";
        if (!_queues.Contains(queue))
        {
            return Reply.Error(404, "NOT_FOUND", $"Queue {parent} does not exist.");
        }

        var task = r.Json.GetProperty("task");
        var http = task.GetProperty("httpRequest");
        var url = new Uri(http.GetProperty("url").GetString()!);
        var function = url.AbsolutePath.TrimStart('/');
        if (url.Host != _functionsHost || url.Scheme != "https" || !function.StartsWith(InstancePrefix, StringComparison.Ordinal) || function != queue)
        {
            Problems.Enqueue($"task for queue {queue} targets {url}, not https://{_functionsHost}/{queue}");
        }

        if (!http.TryGetProperty("oidcToken", out var oidc) || oidc.GetProperty("serviceAccountEmail").GetString() is not { Length: > 0 })
        {
            Problems.Enqueue($"task for {queue} has no oidcToken.serviceAccountEmail: Cloud Run would refuse the delivery");
        }

        string name;
        if (task.TryGetProperty("name", out var given))
        {
            name = given.GetString()!;
            if (!name.StartsWith(parent + "/tasks/", StringComparison.Ordinal))
            {
                return Reply.Error(400, "INVALID_ARGUMENT", $"Task name {name} is not in queue {parent}.");
            }

            if (!_names.TryAdd(name, 0))
            {
                return Reply.Error(409, "ALREADY_EXISTS", "Requested entity already exists");
            }
        }
        else
        {
            name = $"{parent}/tasks/{Random.Shared.NextInt64(1, long.MaxValue).ToString(CultureInfo.InvariantCulture)}";
            _names.TryAdd(name, 0);
        }

        var now = DateTimeOffset.UtcNow;
        var schedule = task.TryGetProperty("scheduleTime", out var s) ? DateTimeOffset.Parse(s.GetString()!, CultureInfo.InvariantCulture) : now;
        var headers = http.TryGetProperty("headers", out var h)
            ? h.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!, StringComparer.OrdinalIgnoreCase)
            : new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var body = http.TryGetProperty("body", out var b) ? Convert.FromBase64String(b.GetString()!) : [];
        var method = http.TryGetProperty("httpMethod", out var m) ? m.GetString()! : "POST";

        Interlocked.Increment(ref _pending);
        _dispatches.Enqueue(Task.Run(() => DispatchAsync(queue, name, schedule, method, headers, body, _stop.Token)));

        var stamp = now.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
        return Reply.Ok(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["name"] = name,
            ["httpRequest"] = new Dictionary<string, object> { ["url"] = url.ToString(), ["httpMethod"] = method, ["headers"] = headers },
            ["scheduleTime"] = schedule.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
            ["createTime"] = stamp,
            ["dispatchDeadline"] = "600s",
            ["view"] = "BASIC",
        }));
    }

    private async Task DispatchAsync(
        string queue, string name, DateTimeOffset schedule, string method, Dictionary<string, string> headers, byte[] body, CancellationToken cancellationToken)
    {
        try
        {
            var wait = schedule - DateTimeOffset.UtcNow;
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, cancellationToken);
            }

            var function = queue[InstancePrefix.Length..];
            var backoff = TimeSpan.FromMilliseconds(100);
            int? previous = null;
            for (var attempt = 0; attempt < MaxAttempts; attempt++)
            {
                var status = await AttemptAsync(function, queue, name, schedule, method, headers, body, attempt, previous, cancellationToken);
                Deliveries.Enqueue(new Delivery("task", function, name[(name.LastIndexOf('/') + 1)..], status));
                if (status / 100 == 2)
                {
                    return;
                }

                previous = status;
                await Task.Delay(backoff, cancellationToken);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }

            Problems.Enqueue($"task {name} still failed after {MaxAttempts} attempts (last answer {previous})");
        }
        finally
        {
            Interlocked.Decrement(ref _pending);
        }
    }

    private async Task<int> AttemptAsync(
        string function,
        string queue,
        string name,
        DateTimeOffset schedule,
        string method,
        Dictionary<string, string> headers,
        byte[] body,
        int attempt,
        int? previous,
        CancellationToken cancellationToken)
    {
        if (Hosts?.TryGetUrl(function, out var url) != true)
        {
            return 404;
        }

        using var request = new HttpRequestMessage(new HttpMethod(method), url) { Content = new ByteArrayContent(body) };
        foreach (var (key, value) in headers)
        {
            if (key.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
            {
                request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(value);
            }
            else
            {
                request.Headers.TryAddWithoutValidation(key, value);
            }
        }

        request.Headers.UserAgent.ParseAdd("Google-Cloud-Tasks");
        request.Headers.Add("X-CloudTasks-QueueName", queue);
        request.Headers.Add("X-CloudTasks-TaskName", name[(name.LastIndexOf('/') + 1)..]);
        request.Headers.Add("X-CloudTasks-TaskRetryCount", attempt.ToString(CultureInfo.InvariantCulture));
        request.Headers.Add("X-CloudTasks-TaskExecutionCount", attempt.ToString(CultureInfo.InvariantCulture));
        request.Headers.Add("X-CloudTasks-TaskETA", schedule.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture));
        if (previous is { } code)
        {
            request.Headers.Add("X-CloudTasks-TaskPreviousResponse", code.ToString(CultureInfo.InvariantCulture));
            request.Headers.Add("X-CloudTasks-TaskRetryReason", "HTTP status code " + code.ToString(CultureInfo.InvariantCulture));
        }

        try
        {
            using var response = await Http.SendAsync(request, cancellationToken);
            return (int)response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return 503;
        }
    }
}
