using System.Text.Json;
using CloudNative.CloudEvents;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>google.cloud.audit.log.v1.written with LogEntryData JSON.</summary>
public static class AuditLogEventDecoder
{
    public const string WrittenType = "google.cloud.audit.log.v1.written";

    public static AuditLogEvent Decode(CloudEvent cloudEvent)
    {
        ArgumentNullException.ThrowIfNull(cloudEvent);
        if (cloudEvent.Type != WrittenType)
        {
            throw new FormatException($"{cloudEvent.Type} is not an audit log event.");
        }

        try
        {
            using var document = JsonDocument.Parse(CloudEventReader.DataBytes(cloudEvent));
            var entry = document.RootElement;
            if (!entry.TryGetProperty("protoPayload", out var payload) || payload.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("LogEntryData has no protoPayload.");
            }

            var operation = entry.TryGetProperty("operation", out var op) && op.ValueKind == JsonValueKind.Object ? op : default;
            return new AuditLogEvent(
                ServiceName: String(payload, "serviceName") ?? "",
                MethodName: String(payload, "methodName") ?? "",
                ResourceName: String(payload, "resourceName") ?? "",
                OperationId: String(operation, "id"),
                First: Flag(operation, "first"),
                Last: Flag(operation, "last"));
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new FormatException("Malformed LogEntryData: " + e.Message, e);
        }
    }

    private static string? String(JsonElement parent, string name) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    private static bool Flag(JsonElement parent, string name) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.True;
}
