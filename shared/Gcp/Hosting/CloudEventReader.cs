using System.Net.Mime;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudNative.CloudEvents;
using CloudNative.CloudEvents.SystemTextJson;
using Microsoft.AspNetCore.Http;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>
/// Reads an Eventarc delivery as a <see cref="CloudEvent"/>: binary content mode (ce-* headers, body = data)
/// or structured mode (application/cloudevents+json). Attribute names are matched case-insensitively
/// because Google's samples spell extension attributes in camelCase (methodName) while CloudEvents
/// names are lower-case. Throws <see cref="FormatException"/> when the request is not a CloudEvent.
/// </summary>
public static class CloudEventReader
{
    private const string HeaderPrefix = "ce-";
    private const string StructuredMediaTypePrefix = "application/cloudevents";
    private static readonly JsonEventFormatter Formatter = new();

    public static async Task<CloudEvent> ReadAsync(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
        var body = buffer.ToArray();
        try
        {
            var cloudEvent = request.ContentType?.StartsWith(StructuredMediaTypePrefix, StringComparison.OrdinalIgnoreCase) == true
                ? ReadStructured(body, request.ContentType)
                : ReadBinary(request.Headers, request.ContentType, body);
            return cloudEvent.Validate();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or JsonException or FormatException)
        {
            throw new FormatException("The request is not a valid CloudEvent: " + e.Message, e);
        }
    }

    /// <summary>The event's data as bytes, whichever form the formatter left it in.</summary>
    public static byte[] DataBytes(CloudEvent cloudEvent)
    {
        ArgumentNullException.ThrowIfNull(cloudEvent);
        return cloudEvent.Data switch
        {
            null => [],
            byte[] bytes => bytes,
            JsonElement json => Encoding.UTF8.GetBytes(json.GetRawText()),
            string text => Encoding.UTF8.GetBytes(text),
            var other => throw new FormatException($"Unexpected CloudEvent data of type {other.GetType().Name}."),
        };
    }

    private static CloudEvent ReadBinary(IHeaderDictionary headers, string? contentType, byte[] body)
    {
        var specVersionHeader = headers[HeaderPrefix + "specversion"].ToString();
        var specVersion = CloudEventsSpecVersion.FromVersionId(specVersionHeader)
            ?? throw new FormatException($"Unsupported or missing ce-specversion '{specVersionHeader}'.");
        var cloudEvent = new CloudEvent(specVersion);
        foreach (var (name, values) in headers)
        {
            if (!name.StartsWith(HeaderPrefix, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var attribute = name[HeaderPrefix.Length..].ToLowerInvariant();
            if (attribute != "specversion")
            {
                // The HTTP binding percent-encodes attribute values that are not printable ASCII.
                cloudEvent.SetAttributeFromString(attribute, Uri.UnescapeDataString(values.ToString()));
            }
        }

        cloudEvent.DataContentType = contentType;
        cloudEvent.Data = body;
        return cloudEvent;
    }

    private static CloudEvent ReadStructured(byte[] body, string contentType)
    {
        var envelope = JsonNode.Parse(body) as JsonObject
            ?? throw new FormatException("A structured CloudEvent must be a JSON object.");
        var normalized = new JsonObject();
        foreach (var (name, value) in envelope.ToList())
        {
            envelope.Remove(name);
            normalized.Add(name.ToLowerInvariant(), value);
        }

        return Formatter.DecodeStructuredModeMessage(
            Encoding.UTF8.GetBytes(normalized.ToJsonString()), new ContentType(contentType), extensionAttributes: null);
    }
}
