using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ReverseImageSearch.Gcp.Http;

/// <summary>JSON conventions of the Google REST APIs: lowerCamelCase names, absent (not null) optional fields.</summary>
public static class GcpJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}

/// <summary>
/// The one way every adapter talks to Google: sends a request through the shared pipeline (auth, retries),
/// and turns any non-success answer into a <see cref="Core.Ports.ServiceException"/>.
/// </summary>
public sealed class GoogleRestClient
{
    private readonly Func<HttpClient> _httpFactory;

    /// <summary>A client over <paramref name="httpFactory"/>, asked for an HttpClient per call (IHttpClientFactory rotates handlers).</summary>
    public GoogleRestClient(Func<HttpClient> httpFactory) => _httpFactory = httpFactory;

    public GoogleRestClient(HttpClient http)
        : this(() => http)
    {
    }

    private HttpClient Http => _httpFactory();

    /// <summary>Sends and returns the successful response; throws ServiceException for any error answer.</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            throw await GoogleApiErrors.ToExceptionAsync(response, cancellationToken);
        }
    }

    /// <summary>Sends <paramref name="body"/> (when not null) as JSON and reads the answer as <typeparamref name="TResponse"/>.</summary>
    public async Task<TResponse> SendJsonAsync<TResponse>(HttpMethod method, Uri uri, object? body, CancellationToken cancellationToken)
    {
        using var request = CreateJsonRequest(method, uri, body);
        using var response = await SendAsync(request, cancellationToken);
        return await ReadJsonAsync<TResponse>(response, cancellationToken);
    }

    /// <summary>
    /// As <see cref="SendJsonAsync{TResponse}"/>, but the pipeline sends the request once, never again after a 5xx or a
    /// timeout: for calls that create a new resource on every send (<see cref="GcpHttpPipeline.SendOnce"/>).
    /// </summary>
    public async Task<TResponse> SendJsonOnceAsync<TResponse>(HttpMethod method, Uri uri, object? body, CancellationToken cancellationToken)
    {
        using var request = CreateJsonRequest(method, uri, body);
        request.Options.Set(GcpHttpPipeline.SendOnce, true);
        using var response = await SendAsync(request, cancellationToken);
        return await ReadJsonAsync<TResponse>(response, cancellationToken);
    }

    /// <summary>Sends and discards the answer.</summary>
    public async Task SendJsonAsync(HttpMethod method, Uri uri, object? body, CancellationToken cancellationToken)
    {
        using var request = CreateJsonRequest(method, uri, body);
        using var response = await SendAsync(request, cancellationToken);
    }

    public static HttpRequestMessage CreateJsonRequest(HttpMethod method, Uri uri, object? body)
    {
        var request = new HttpRequestMessage(method, uri);
        if (body is not null)
        {
            var json = JsonSerializer.Serialize(body, body.GetType(), GcpJson.Options);
            request.Content = new StringContent(json, Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
        }

        return request;
    }

    public static async Task<T> ReadJsonAsync<T>(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(response);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (string.IsNullOrWhiteSpace(text))
        {
            text = "{}";
        }

        return JsonSerializer.Deserialize<T>(text, GcpJson.Options)
            ?? throw new JsonException($"Empty JSON answer from {response.RequestMessage?.RequestUri}.");
    }
}
