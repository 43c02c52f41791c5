using System.Globalization;
using System.Text.Json;
using CloudNative.CloudEvents;
using Google.Protobuf;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using Proto = ReverseImageSearch.Gcp.Protos.Firestore;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>
/// google.cloud.firestore.document.v1.* with DocumentEventData, as protobuf (what gcloud functions deploy
/// sets up) or as JSON with Firestore REST typed values (Eventarc's default), chosen by datacontenttype.
/// Field values become Core's plain values: long, double, bool, string, null, DateTimeOffset, byte[],
/// references as their resource name, geo points as {latitude, longitude}, lists and maps.
/// </summary>
public static class FirestoreEventDecoder
{
    public const string TypePrefix = "google.cloud.firestore.document.v1.";

    private const string DocumentsMarker = "/documents/";

    public static bool IsDocumentEvent(string? eventType) =>
        eventType?.StartsWith(TypePrefix, StringComparison.Ordinal) == true;

    public static DocumentChange Decode(CloudEvent cloudEvent)
    {
        ArgumentNullException.ThrowIfNull(cloudEvent);
        if (!IsDocumentEvent(cloudEvent.Type))
        {
            throw new FormatException($"{cloudEvent.Type} is not a Firestore document event.");
        }

        var bytes = CloudEventReader.DataBytes(cloudEvent);
        var (before, after) = IsProtobuf(cloudEvent.DataContentType) ? FromProtobuf(bytes) : FromJson(bytes);
        var path = after?.Path ?? before?.Path
            ?? (cloudEvent["document"] as string)
            ?? throw new FormatException("The Firestore event names no document.");
        return new DocumentChange(path, before, after);
    }

    /// <summary>The document path without the projects/.../documents/ prefix.</summary>
    public static string RelativePath(string resourceName)
    {
        ArgumentNullException.ThrowIfNull(resourceName);
        var marker = resourceName.IndexOf(DocumentsMarker, StringComparison.Ordinal);
        return marker < 0 ? resourceName : resourceName[(marker + DocumentsMarker.Length)..];
    }

    private static bool IsProtobuf(string? contentType) =>
        contentType?.Contains("protobuf", StringComparison.OrdinalIgnoreCase) == true;

    private static (DocumentSnapshot? Before, DocumentSnapshot? After) FromProtobuf(byte[] bytes)
    {
        Proto.DocumentEventData data;
        try
        {
            data = Proto.DocumentEventData.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new FormatException("Malformed DocumentEventData protobuf: " + e.Message, e);
        }

        return (Snapshot(data.OldValue), Snapshot(data.Value));
    }

    // A document that is absent (created: no old value; deleted: no value) may also arrive as an empty message.
    private static DocumentSnapshot? Snapshot(Proto.Document? document) =>
        document is null || document.Name.Length == 0
            ? null
            : new DocumentSnapshot(RelativePath(document.Name), Fields(document.Fields), document.UpdateTime?.ToDateTimeOffset());

    private static Dictionary<string, object?> Fields(IDictionary<string, Proto.Value> fields) =>
        fields.ToDictionary(field => field.Key, field => Plain(field.Value), StringComparer.Ordinal);

    private static object? Plain(Proto.Value value) => value.ValueTypeCase switch
    {
        Proto.Value.ValueTypeOneofCase.NullValue or Proto.Value.ValueTypeOneofCase.None => null,
        Proto.Value.ValueTypeOneofCase.BooleanValue => value.BooleanValue,
        Proto.Value.ValueTypeOneofCase.IntegerValue => value.IntegerValue,
        Proto.Value.ValueTypeOneofCase.DoubleValue => value.DoubleValue,
        Proto.Value.ValueTypeOneofCase.TimestampValue => value.TimestampValue.ToDateTimeOffset(),
        Proto.Value.ValueTypeOneofCase.StringValue => value.StringValue,
        Proto.Value.ValueTypeOneofCase.BytesValue => value.BytesValue.ToByteArray(),
        Proto.Value.ValueTypeOneofCase.ReferenceValue => value.ReferenceValue,
        Proto.Value.ValueTypeOneofCase.GeoPointValue => GeoPoint(value.GeoPointValue.Latitude, value.GeoPointValue.Longitude),
        Proto.Value.ValueTypeOneofCase.ArrayValue => value.ArrayValue.Values.Select(Plain).ToArray(),
        Proto.Value.ValueTypeOneofCase.MapValue => Fields(value.MapValue.Fields),
        _ => throw new FormatException($"Unknown Firestore value type {value.ValueTypeCase}."),
    };

    private static (DocumentSnapshot? Before, DocumentSnapshot? After) FromJson(byte[] bytes)
    {
        try
        {
            using var document = JsonDocument.Parse(bytes);
            var data = document.RootElement;
            return (Snapshot(data, "oldValue"), Snapshot(data, "value"));
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new FormatException("Malformed DocumentEventData JSON: " + e.Message, e);
        }
    }

    private static DocumentSnapshot? Snapshot(JsonElement data, string property)
    {
        if (!data.TryGetProperty(property, out var document) || document.ValueKind != JsonValueKind.Object
            || !document.TryGetProperty("name", out var name) || name.GetString() is not { Length: > 0 } resourceName)
        {
            return null;
        }

        var fields = document.TryGetProperty("fields", out var f) ? Fields(f) : new Dictionary<string, object?>();
        var updateTime = document.TryGetProperty("updateTime", out var t) ? Timestamp(t.GetString()) : (DateTimeOffset?)null;
        return new DocumentSnapshot(RelativePath(resourceName), fields, updateTime);
    }

    private static Dictionary<string, object?> Fields(JsonElement fields) =>
        fields.EnumerateObject().ToDictionary(field => field.Name, field => Plain(field.Value), StringComparer.Ordinal);

    private static object? Plain(JsonElement value)
    {
        using var properties = value.EnumerateObject();
        if (!properties.MoveNext())
        {
            throw new FormatException("A Firestore value has no type.");
        }

        var typed = properties.Current.Value;
        return properties.Current.Name switch
        {
            "nullValue" => null,
            "booleanValue" => typed.GetBoolean(),
            "integerValue" => typed.ValueKind == JsonValueKind.String
                ? long.Parse(typed.GetString()!, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture)
                : typed.GetInt64(),
            "doubleValue" => typed.ValueKind == JsonValueKind.String ? SpecialDouble(typed.GetString()) : typed.GetDouble(),
            "timestampValue" => Timestamp(typed.GetString()),
            "stringValue" => typed.GetString(),
            "bytesValue" => typed.GetBytesFromBase64(),
            "referenceValue" => typed.GetString(),
            "geoPointValue" => GeoPoint(Coordinate(typed, "latitude"), Coordinate(typed, "longitude")),
            "arrayValue" => typed.TryGetProperty("values", out var values) ? values.EnumerateArray().Select(Plain).ToArray() : Array.Empty<object?>(),
            "mapValue" => typed.TryGetProperty("fields", out var fields) ? Fields(fields) : new Dictionary<string, object?>(),
            var other => throw new FormatException($"Unknown Firestore value type {other}."),
        };
    }

    // proto3 JSON omits a coordinate of 0.
    private static double Coordinate(JsonElement geoPoint, string name) =>
        geoPoint.TryGetProperty(name, out var value) ? value.GetDouble() : 0;

    private static double SpecialDouble(string? text) => text switch
    {
        "NaN" => double.NaN,
        "Infinity" => double.PositiveInfinity,
        "-Infinity" => double.NegativeInfinity,
        _ => double.Parse(text ?? "", NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    // RFC 3339 with up to 9 fractional digits; .NET keeps 7 (100 ns), so the rest is dropped before parsing.
    private static DateTimeOffset Timestamp(string? text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot >= 0)
        {
            var end = dot + 1;
            while (end < text.Length && char.IsAsciiDigit(text[end]))
            {
                end++;
            }

            if (end - dot - 1 > 7)
            {
                text = string.Concat(text.AsSpan(0, dot + 8), text.AsSpan(end));
            }
        }

        return DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
    }

    private static Dictionary<string, object?> GeoPoint(double latitude, double longitude) =>
        new(StringComparer.Ordinal) { ["latitude"] = latitude, ["longitude"] = longitude };
}
