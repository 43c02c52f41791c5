using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace ReverseImageSearch.Tests.Gcp.Contract;

/// <summary>A request as the contract server received it.</summary>
public sealed record RecordedRequest(
    string MethodId,
    string HttpMethod,
    string RawPath,
    IReadOnlyList<KeyValuePair<string, string>> Query,
    byte[] Body,
    string? ContentType,
    IHeaderDictionary Headers)
{
    public string? QueryValue(string name) => Query.FirstOrDefault(q => q.Key == name).Value;

    public IReadOnlyList<string> QueryValues(string name) => Query.Where(q => q.Key == name).Select(q => q.Value).ToArray();

    public JsonElement Json => JsonDocument.Parse(Body).RootElement;
}

/// <summary>An answer of the contract server.</summary>
public sealed record Reply(int Status, string? Json = null, IReadOnlyDictionary<string, string>? Headers = null, byte[]? Bytes = null, string? BytesContentType = null)
{
    /// <summary>Wait this long before answering (an attempt timeout on the client's side).</summary>
    public TimeSpan Delay { get; init; }

    /// <summary>Abort the connection instead of answering (a connection reset).</summary>
    public bool ResetConnection { get; init; }

    public static Reply Ok(object body) => new(200, body as string ?? JsonSerializer.Serialize(body));

    /// <summary>The connection is reset: no status, no body.</summary>
    public static Reply Reset() => new(0) { ResetConnection = true };

    /// <summary><paramref name="reply"/>, sent after <paramref name="delay"/>.</summary>
    public static Reply After(TimeSpan delay, Reply reply) => reply with { Delay = delay };

    public static Reply Error(int status, string statusName, string message) =>
        new(status, JsonSerializer.Serialize(new { error = new { code = status, message, status = statusName } }));
}

/// <summary>
/// An HTTP server (Kestrel, 127.0.0.1, port 0) that checks every request against the Google discovery documents:
/// the method is found by verb + path, every query parameter must be declared, the JSON body must match the
/// method's request schema. Violations are collected (tests assert none). Answers come from scripted faults
/// first, then the handler registered for the method.
/// </summary>
public sealed class ContractServer : IAsyncDisposable
{
    /// <summary>Across all tests: method id -> names of the tests whose requests of that kind were validated.</summary>
    public static ConcurrentDictionary<string, ConcurrentDictionary<string, byte>> Coverage { get; } = new();

    /// <summary>Session PUT of a resumable upload (the URI the POST answered in Location).</summary>
    public const string UploadSessionMethod = "storage.objects.insert#session";

    /// <summary>The metadata server's service account email (not a discovery API).</summary>
    public const string MetadataEmailMethod = "metadata.serviceAccountEmail";

    private static readonly string[] UploadTypes = ["media", "multipart", "resumable"];

    private readonly IReadOnlyList<DiscoveryDocument> _documents;
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<(Func<RecordedRequest, bool> When, Reply Reply)> _faults = new();

    private ContractServer(IReadOnlyList<DiscoveryDocument> documents, WebApplication app)
    {
        _documents = documents;
        _app = app;
    }

    public Uri BaseUri { get; private set; } = null!;

    public string ExpectedToken { get; set; } = "test-token";

    public ConcurrentQueue<string> Violations { get; } = new();

    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();

    public ConcurrentDictionary<string, Func<RecordedRequest, Task<Reply>>> Handlers { get; } = new();

    /// <summary>Answers requests without a handler (for example a proxy to the Firestore emulator).</summary>
    public Func<RecordedRequest, Task<Reply>>? Fallback { get; set; }

    public static async Task<ContractServer> StartAsync(params string[] discoveryNames)
    {
        var docs = discoveryNames
            .Select(n => new DiscoveryDocument(Path.Combine(TestPaths.ApiSpecs, "discovery", n + ".json")))
            .ToArray();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var server = new ContractServer(docs, app);
        app.Run(server.HandleAsync);
        await app.StartAsync();
        server.BaseUri = new Uri(app.Urls.First());
        return server;
    }

    public Uri Url(string pathAndQuery) => new(BaseUri, pathAndQuery);

    public void Handle(string methodId, Func<RecordedRequest, Reply> handler) => Handlers[methodId] = r => Task.FromResult(handler(r));

    /// <summary>The next request of <paramref name="methodId"/> (each call scripts one) answers <paramref name="reply"/>.</summary>
    public void FailNext(string methodId, Reply reply) => _faults.Enqueue((r => r.MethodId == methodId, reply));

    public IReadOnlyList<RecordedRequest> RequestsOf(string methodId) => Requests.Where(r => r.MethodId == methodId).ToArray();

    /// <summary>The test the requests belong to (Kestrel's threads do not carry NUnit's context); set by <see cref="Reset"/>.</summary>
    public string CurrentTest { get; set; } = "?";

    public void Reset()
    {
        CurrentTest = TestContext.CurrentContext.Test.FullName;
        Violations.Clear();
        Requests.Clear();
        Handlers.Clear();
        _faults.Clear();
        Fallback = null;
    }

    /// <summary>Fails the current test when any request broke the contract; then forgets them.</summary>
    public void AssertNoViolations()
    {
        var found = Violations.ToArray();
        Violations.Clear();
        Assert.That(found, Is.Empty, "requests that the discovery documents do not allow");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()!.RawTarget;
        var q = raw.IndexOf('?', StringComparison.Ordinal);
        var rawPath = q < 0 ? raw : raw[..q];
        var query = ParseQuery(q < 0 ? "" : raw[(q + 1)..]);
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer);
        var body = buffer.ToArray();
        var verb = context.Request.Method;
        var problems = new List<string>();

        string methodId;
        if (verb == "GET" && rawPath == "/computeMetadata/v1/instance/service-accounts/default/email")
        {
            methodId = MetadataEmailMethod;
            if (context.Request.Headers["Metadata-Flavor"] != "Google")
            {
                problems.Add("metadata server request without Metadata-Flavor: Google");
            }
        }
        else
        {
            methodId = Validate(verb, rawPath, query, body, context.Request.ContentType, context.Request.Headers, problems);
        }

        foreach (var p in problems)
        {
            Violations.Enqueue($"{verb} {raw}: {p}");
        }

        var headers = new HeaderDictionary(context.Request.Headers.ToDictionary(h => h.Key, h => h.Value, StringComparer.OrdinalIgnoreCase));
        var recorded = new RecordedRequest(methodId, verb, rawPath, query, body, context.Request.ContentType, headers);
        Requests.Enqueue(recorded);
        if (problems.Count == 0 && methodId != "?")
        {
            var test = CurrentTest;
            Coverage.GetOrAdd(methodId, _ => new()).TryAdd(test, 0);
        }

        var reply = NextFault(recorded);
        if (reply is null)
        {
            if (Handlers.TryGetValue(methodId, out var handler))
            {
                reply = await handler(recorded);
            }
            else if (Fallback is not null)
            {
                reply = await Fallback(recorded);
            }
            else
            {
                Violations.Enqueue($"{verb} {raw}: no answer scripted for {methodId}");
                reply = Reply.Error(501, "UNIMPLEMENTED", "not scripted: " + methodId);
            }
        }

        if (reply.Delay > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(reply.Delay, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        if (reply.ResetConnection)
        {
            context.Abort();
            return;
        }

        context.Response.StatusCode = reply.Status;
        foreach (var (k, v) in reply.Headers ?? new Dictionary<string, string>())
        {
            context.Response.Headers[k] = v;
        }

        if (reply.Bytes is not null)
        {
            context.Response.ContentType = reply.BytesContentType ?? "application/octet-stream";
            await context.Response.Body.WriteAsync(reply.Bytes);
        }
        else if (reply.Json is not null)
        {
            context.Response.ContentType = "application/json; charset=UTF-8";
            await context.Response.WriteAsync(reply.Json);
        }
    }

    private Reply? NextFault(RecordedRequest request)
    {
        // One-shot faults, in order, for the first that matches this request.
        var kept = new List<(Func<RecordedRequest, bool>, Reply)>();
        Reply? chosen = null;
        while (_faults.TryDequeue(out var fault))
        {
            if (chosen is null && fault.When(request))
            {
                chosen = fault.Reply;
            }
            else
            {
                kept.Add(fault);
            }
        }

        foreach (var k in kept)
        {
            _faults.Enqueue(k);
        }

        return chosen;
    }

    private string Validate(
        string verb,
        string rawPath,
        IReadOnlyList<KeyValuePair<string, string>> query,
        byte[] body,
        string? contentType,
        IHeaderDictionary headers,
        List<string> problems)
    {
        var auth = headers.Authorization.ToString();
        if (auth != "Bearer " + ExpectedToken)
        {
            problems.Add($"Authorization is '{auth}', expected 'Bearer {ExpectedToken}'");
        }

        var candidates = _documents.SelectMany(d => d.Methods)
            .Where(m => m.HttpMethod == verb && m.PathPatterns.Any(p => p.IsMatch(rawPath)))
            .ToList();
        var isUpload = false;
        var isSession = false;
        if (candidates.Count == 0)
        {
            var uploads = _documents.SelectMany(d => d.Methods).Where(m => m.UploadPatterns.Any(p => p.IsMatch(rawPath))).ToList();
            if (uploads.Count > 0 && verb == "PUT" && query.Any(kv => kv.Key == "upload_id"))
            {
                isSession = true;
                candidates = uploads;
            }
            else
            {
                candidates = uploads.Where(m => m.HttpMethod == verb).ToList();
                isUpload = candidates.Count > 0;
            }
        }

        if (candidates.Count == 0)
        {
            problems.Add("no discovery method matches this verb and path");
            return "?";
        }

        // A scripted method wins; else the most specific template (fewest variables: documents.get over documents.list).
        var method = candidates.FirstOrDefault(c => Handlers.ContainsKey(c.Id))
            ?? candidates.OrderBy(c => c.Definition.GetProperty("path").GetString()!.Count(ch => ch == '{')).First();
        if (isSession)
        {
            foreach (var (name, _) in query.Where(kv => kv.Key is not ("upload_id" or "uploadType" or "name")))
            {
                problems.Add($"query parameter '{name}' is not part of an upload session URI");
            }

            return UploadSessionMethod;
        }

        ValidateQuery(method, query, isUpload, problems);
        var uploadType = query.FirstOrDefault(kv => kv.Key == "uploadType").Value;
        if (isUpload && uploadType is "media")
        {
            if (string.IsNullOrEmpty(contentType))
            {
                problems.Add("media upload without Content-Type");
            }

            if (string.IsNullOrEmpty(query.FirstOrDefault(kv => kv.Key == "name").Value))
            {
                problems.Add("media upload without name");
            }

            return method.Id;
        }

        if (isUpload && uploadType is not ("resumable" or "multipart"))
        {
            problems.Add($"upload path with uploadType '{uploadType}'");
        }

        if (body.Length > 0)
        {
            if (method.RequestSchema is not { } schema)
            {
                problems.Add($"{method.Id} takes no request body");
            }
            else if (contentType is null || !contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
            {
                problems.Add($"JSON body sent as '{contentType}'");
            }
            else
            {
                try
                {
                    using var json = JsonDocument.Parse(body);
                    var errors = new List<string>();
                    DiscoverySchemaValidator.Validate(method.Document, method.Document.Schema(schema), json.RootElement, schema, errors);
                    problems.AddRange(errors);
                }
                catch (JsonException e)
                {
                    problems.Add("body is not JSON: " + e.Message);
                }
            }
        }
        else if (method.RequestSchema is not null && !isUpload)
        {
            problems.Add($"{method.Id} expects a {method.RequestSchema} body");
        }

        return method.Id;
    }

    private static void ValidateQuery(DiscoveryMethod method, IReadOnlyList<KeyValuePair<string, string>> query, bool isUpload, List<string> problems)
    {
        foreach (var group in query.GroupBy(kv => kv.Key))
        {
            var declared = method.Parameter(group.Key) is { } p && p.TryGetProperty("location", out var loc) && loc.GetString() == "query"
                ? p
                : method.Document.GlobalParameter(group.Key);
            if (declared is not { } parameter)
            {
                problems.Add($"query parameter '{group.Key}' is not declared for {method.Id}");
                continue;
            }

            var repeated = parameter.TryGetProperty("repeated", out var r) && r.GetBoolean();
            if (group.Count() > 1 && !repeated)
            {
                problems.Add($"query parameter '{group.Key}' given {group.Count()} times but not repeated");
            }

            foreach (var (_, value) in group)
            {
                CheckParameterValue(method, group.Key, parameter, value, isUpload, problems);
            }
        }
    }

    private static void CheckParameterValue(DiscoveryMethod method, string name, JsonElement parameter, string value, bool isUpload, List<string> problems)
    {
        if (name == "uploadType")
        {
            if (!isUpload || !UploadTypes.Contains(value))
            {
                problems.Add($"uploadType '{value}' on {(isUpload ? "an upload" : "a non-upload")} path of {method.Id}");
            }

            return;
        }

        if (parameter.TryGetProperty("enum", out var values) && !values.EnumerateArray().Any(v => v.GetString() == value))
        {
            problems.Add($"query parameter {name}='{value}' is not a listed value");
        }

        var type = parameter.TryGetProperty("type", out var t) ? t.GetString() : "string";
        var format = parameter.TryGetProperty("format", out var f) ? f.GetString() : null;
        var ok = type switch
        {
            "integer" => long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _),
            "boolean" => value is "true" or "false",
            "string" when format is "int64" or "uint64" => long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _),
            "string" when format is "byte" => value.Length > 0,
            _ => true,
        };
        if (!ok)
        {
            problems.Add($"query parameter {name}='{value}' is not a valid {type}/{format}");
        }
    }

    private static List<KeyValuePair<string, string>> ParseQuery(string query)
    {
        var result = new List<KeyValuePair<string, string>>();
        foreach (var part in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var name = Uri.UnescapeDataString((eq < 0 ? part : part[..eq]).Replace('+', ' '));
            var value = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..].Replace('+', ' '));
            result.Add(new(name, value));
        }

        return result;
    }

    /// <summary>Serialises an object as Google does (lowerCamelCase, nulls omitted).</summary>
    public static string Json(object value) =>
        JsonSerializer.Serialize(value, ReverseImageSearch.Gcp.Http.GcpJson.Options);

    public static string Base64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));
}
