using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>
/// The one mapping of failures to HTTP for every trigger kind: a <see cref="FunctionException"/> is shown
/// to the caller as it is; anything else is logged and answered 500 INTERNAL without its message, which
/// also makes Cloud Tasks and Eventarc deliver again.
/// </summary>
public static partial class FunctionErrorResponses
{
    /// <summary>The callable protocol's answer to a malformed request.</summary>
    public static Task WriteBadRequestAsync(HttpResponse response) =>
        WriteErrorAsync(response, FunctionErrorCode.InvalidArgument, "Bad Request", details: null);

    public static Task WriteUnauthenticatedAsync(HttpResponse response) =>
        WriteErrorAsync(response, FunctionErrorCode.Unauthenticated, "Unauthenticated", details: null);

    /// <summary>Answers for <paramref name="exception"/> thrown by a handler (or by decoding its trigger).</summary>
    public static Task WriteFailureAsync(HttpResponse response, Exception exception, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (exception is FunctionException functionException)
        {
            LogFunctionError(logger, functionException.Code.WireName(), functionException.Message);
            return WriteErrorAsync(response, functionException.Code, functionException.Message, functionException.Details);
        }

        LogUnexpectedFailure(logger, exception);
        return WriteErrorAsync(response, FunctionErrorCode.Internal, "INTERNAL", details: null);
    }

    /// <summary>Writes {"error":{"status","message","details"?}} with the code's HTTP status.</summary>
    public static Task WriteErrorAsync(HttpResponse response, FunctionErrorCode code, string message, object? details) =>
        WriteJsonAsync(response, code.HttpStatus(), writer =>
        {
            writer.WriteStartObject();
            writer.WriteStartObject("error");
            writer.WriteString("status", code.WireName());
            writer.WriteString("message", message);
            if (details is not null)
            {
                writer.WritePropertyName("details");
                JsonSerializer.Serialize(writer, details, details.GetType(), CoreJson.Options);
            }

            writer.WriteEndObject();
            writer.WriteEndObject();
        });

    /// <summary>
    /// Writes a JSON body composed in memory first: servers forbid synchronous writes to the response, and a
    /// value that fails to serialise then fails before anything is sent.
    /// </summary>
    internal static Task WriteJsonAsync(HttpResponse response, int statusCode, Action<Utf8JsonWriter> write) =>
        WriteJsonAsync(response, statusCode, ComposeJson(write));

    internal static async Task WriteJsonAsync(HttpResponse response, int statusCode, ReadOnlyMemory<byte> body)
    {
        ArgumentNullException.ThrowIfNull(response);
        response.StatusCode = statusCode;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = body.Length;
        await response.Body.WriteAsync(body, response.HttpContext.RequestAborted);
    }

    internal static ReadOnlyMemory<byte> ComposeJson(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer);
        }

        return buffer.WrittenMemory;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Function answered {Status}: {ErrorMessage}")]
    private static partial void LogFunctionError(ILogger logger, string status, string errorMessage);

    [LoggerMessage(Level = LogLevel.Error, Message = "Function failed")]
    private static partial void LogUnexpectedFailure(ILogger logger, Exception exception);
}
