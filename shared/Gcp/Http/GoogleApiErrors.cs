using System.Net;
using System.Text.Json;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Gcp.Http;

/// <summary>
/// Turns a Google API error answer into <see cref="ServiceException"/>: the current shape
/// <c>{"error": {code, message, status}}</c> and Cloud Storage's older <c>{"error": {code, message, errors: [...]}}</c>.
/// </summary>
public static class GoogleApiErrors
{
    public static async Task<ServiceException> ToExceptionAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(response);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        return FromBody((int)response.StatusCode, body, response.ReasonPhrase);
    }

    public static ServiceException FromBody(int httpStatus, string? body, string? reasonPhrase = null)
    {
        string? status = null;
        string? message = null;
        if (!string.IsNullOrWhiteSpace(body))
        {
            try
            {
                using var doc = JsonDocument.Parse(body);
                if (doc.RootElement.ValueKind == JsonValueKind.Object
                    && doc.RootElement.TryGetProperty("error", out var error))
                {
                    if (error.ValueKind == JsonValueKind.Object)
                    {
                        status = StringOf(error, "status");
                        message = StringOf(error, "message");
                        if (message is null
                            && error.TryGetProperty("errors", out var errors)
                            && errors.ValueKind == JsonValueKind.Array
                            && errors.GetArrayLength() > 0
                            && errors[0].ValueKind == JsonValueKind.Object)
                        {
                            message = StringOf(errors[0], "message") ?? StringOf(errors[0], "reason");
                        }
                    }
                    else if (error.ValueKind == JsonValueKind.String)
                    {
                        message = error.GetString();
                    }
                }
            }
            catch (JsonException)
            {
                message = body.Length > 500 ? body[..500] : body;
            }
        }

        return new ServiceException(
            httpStatus,
            string.IsNullOrEmpty(status) ? StatusForHttp(httpStatus) : status,
            message ?? reasonPhrase ?? ((HttpStatusCode)httpStatus).ToString());
    }

    /// <summary>The canonical status an HTTP code stands for, when the answer names none.</summary>
    public static string StatusForHttp(int httpStatus) => httpStatus switch
    {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        412 => "FAILED_PRECONDITION",
        416 => "OUT_OF_RANGE",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        >= 500 => "INTERNAL",
        _ => "UNKNOWN",
    };

    private static string? StringOf(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
