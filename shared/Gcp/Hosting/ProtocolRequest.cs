using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>
/// The one request validation of callables and task deliveries: POST, a JSON content type, and a body
/// that is a JSON object whose only key is "data". Int64Value/UInt64Value wrappers in the data become numbers.
/// </summary>
public static class ProtocolRequest
{
    private const string Int64ValueType = "type.googleapis.com/google.protobuf.Int64Value";
    private const string UInt64ValueType = "type.googleapis.com/google.protobuf.UInt64Value";

    /// <summary>The request's decoded "data", or null when the request is malformed. The caller disposes it once handled.</summary>
    public static async Task<ProtocolData?> TryReadDataAsync(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!HttpMethods.IsPost(request.Method) || !IsJsonContentType(request.ContentType))
        {
            return null;
        }

        JsonDocument body;
        try
        {
            body = await ParseBodyAsync(request);
        }
        catch (Exception e) when (e is JsonException or EndOfStreamException)
        {
            return null;
        }

        var root = body.RootElement;
        if (root.ValueKind != JsonValueKind.Object || root.GetPropertyCount() != 1 || !root.TryGetProperty("data", out var data))
        {
            body.Dispose();
            return null;
        }

        // Without wrappers (the usual case) the data is the body's own: a 40 MB image string is not copied.
        if (!HasWrappers(data))
        {
            return new ProtocolData(body, data);
        }

        using (body)
        {
            var decoded = DecodeWrappers(data);
            return new ProtocolData(decoded, decoded.RootElement);
        }
    }

    /// <summary>
    /// A body of declared length within the server's limit is read into one array of its size and parsed in place:
    /// JsonDocument.ParseAsync would rent doubling buffers from the shared array pool, which keeps them per thread,
    /// so every thread that once read a 30 MB image request would hold about 60 MB for good.
    /// </summary>
    private static async Task<JsonDocument> ParseBodyAsync(HttpRequest request)
    {
        var cancellationToken = request.HttpContext.RequestAborted;
        var limit = request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize;
        if (request.ContentLength is not { } length || limit is not { } max || length > max)
        {
            return await JsonDocument.ParseAsync(request.Body, cancellationToken: cancellationToken);
        }

        var content = new byte[length];
        await request.Body.ReadExactlyAsync(content, cancellationToken);
        return JsonDocument.Parse(content);
    }

    /// <summary>Media type compared case-insensitively; parameters after ';' (charset) are ignored.</summary>
    public static bool IsJsonContentType(string? contentType)
    {
        if (contentType is null)
        {
            return false;
        }

        var separator = contentType.IndexOf(';', StringComparison.Ordinal);
        var mediaType = separator < 0 ? contentType : contentType[..separator];
        return mediaType.Trim().Equals("application/json", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A copy of <paramref name="value"/>, independent of its document, with 64-bit wrappers replaced by numbers.</summary>
    /// <remarks>Leaves are copied raw, never re-escaped: escaping a 40 MB base64 string ('+' and '/' are escaped by
    /// default) rents six times its size from the shared array pool, which keeps such arrays.</remarks>
    private static JsonDocument DecodeWrappers(JsonElement value)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            WriteDecoded(writer, value);
        }

        return JsonDocument.Parse(buffer.WrittenMemory);
    }

    private static void WriteDecoded(Utf8JsonWriter writer, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object when TryReadWrappedInteger(value, out var number):
                writer.WriteNumberValue(number);
                break;
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var property in value.EnumerateObject())
                {
                    writer.WritePropertyName(property.Name);
                    WriteDecoded(writer, property.Value);
                }

                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in value.EnumerateArray())
                {
                    WriteDecoded(writer, item);
                }

                writer.WriteEndArray();
                break;
            default:
                writer.WriteRawValue(JsonMarshal.GetRawUtf8Value(value), skipInputValidation: true);
                break;
        }
    }

    private static bool HasWrappers(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => TryReadWrappedInteger(value, out _) || value.EnumerateObject().Any(property => HasWrappers(property.Value)),
        JsonValueKind.Array => value.EnumerateArray().Any(HasWrappers),
        _ => false,
    };

    // {"@type": "...Int64Value", "value": "-12"}: decimal holds every int64 and uint64 exactly, unlike a double.
    private static bool TryReadWrappedInteger(JsonElement value, out decimal number)
    {
        number = 0;
        if (value.EnumerateObject().Count() != 2 || !value.TryGetProperty("@type", out var type)
            || !value.TryGetProperty("value", out var wrapped) || wrapped.ValueKind != JsonValueKind.String)
        {
            return false;
        }

        var text = wrapped.GetString();
        if (type.ValueEquals(Int64ValueType) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var signed))
        {
            number = signed;
            return true;
        }

        if (type.ValueEquals(UInt64ValueType) && ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var unsigned))
        {
            number = unsigned;
            return true;
        }

        return false;
    }
}

/// <summary>A request's decoded "data", valid until disposed (after the handler has returned).</summary>
public sealed class ProtocolData : IDisposable
{
    private readonly JsonDocument _document;

    internal ProtocolData(JsonDocument document, JsonElement data)
    {
        _document = document;
        Data = data;
    }

    public JsonElement Data { get; }

    public void Dispose() => _document.Dispose();
}
