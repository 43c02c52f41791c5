using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Headers;

namespace ReverseImageSearch.Tests.Gcp.Pipeline;

/// <summary>One HTTP delivery the simulated cloud made to a function (an event or a task attempt).</summary>
public sealed record Delivery(string Kind, string Function, string Detail, int Status);

/// <summary>
/// Plays Eventarc: posts CloudEvents in binary content mode (ce-* headers, body = data) to a function's host,
/// as the trigger's destination would. Every delivery and its answer is recorded.
/// </summary>
public sealed class Eventarc(FunctionHosts hosts, HttpClient http)
{
    public ConcurrentQueue<Delivery> Deliveries { get; } = new();

    /// <summary>Posts the event; returns the function's HTTP status.</summary>
    public async Task<int> PostAsync(
        string function,
        string type,
        string source,
        string subject,
        IReadOnlyDictionary<string, string> extensions,
        byte[] data,
        string contentType,
        CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, hosts.Url(function));
        request.Headers.Add("ce-specversion", "1.0");
        request.Headers.Add("ce-id", Guid.NewGuid().ToString("N"));
        request.Headers.Add("ce-type", type);
        request.Headers.Add("ce-source", source);
        request.Headers.Add("ce-subject", subject);
        request.Headers.Add("ce-time", DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture));
        foreach (var (name, value) in extensions)
        {
            request.Headers.Add("ce-" + name, Uri.EscapeDataString(value).Replace("%2F", "/", StringComparison.Ordinal));
        }

        request.Content = new ByteArrayContent(data);
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        using var response = await http.SendAsync(request, cancellationToken);
        Deliveries.Enqueue(new Delivery("event", function, $"{type} {subject}", (int)response.StatusCode));
        return (int)response.StatusCode;
    }
}
