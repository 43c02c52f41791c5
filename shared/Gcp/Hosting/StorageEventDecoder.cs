using System.Globalization;
using System.Text.Json;
using CloudNative.CloudEvents;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>google.cloud.storage.object.v1.finalized / deleted with StorageObjectData JSON.</summary>
public static class StorageEventDecoder
{
    public const string FinalizedType = "google.cloud.storage.object.v1.finalized";
    public const string DeletedType = "google.cloud.storage.object.v1.deleted";

    /// <summary>The kind of a storage event type; false for any other type.</summary>
    public static bool TryGetKind(string? eventType, out StorageEventKind kind)
    {
        (var known, kind) = eventType switch
        {
            FinalizedType => (true, StorageEventKind.Finalized),
            DeletedType => (true, StorageEventKind.Deleted),
            _ => (false, default),
        };
        return known;
    }

    public static StorageObjectEvent Decode(CloudEvent cloudEvent)
    {
        ArgumentNullException.ThrowIfNull(cloudEvent);
        if (!TryGetKind(cloudEvent.Type, out var kind))
        {
            throw new FormatException($"{cloudEvent.Type} is not a storage object event.");
        }

        try
        {
            using var document = JsonDocument.Parse(CloudEventReader.DataBytes(cloudEvent));
            var data = document.RootElement;
            return new StorageObjectEvent(
                kind,
                Bucket: RequiredString(data, "bucket"),
                Name: RequiredString(data, "name"),
                ContentType: OptionalString(data, "contentType"),
                Size: Int64(data, "size"),
                Md5Hash: OptionalString(data, "md5Hash"),
                Generation: Int64(data, "generation"),
                Metageneration: Int64(data, "metageneration"));
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new FormatException("Malformed StorageObjectData: " + e.Message, e);
        }
    }

    private static string RequiredString(JsonElement data, string name) =>
        OptionalString(data, name) is { Length: > 0 } value ? value : throw new FormatException($"StorageObjectData has no {name}.");

    private static string? OptionalString(JsonElement data, string name) =>
        data.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    // int64 fields travel as strings in practice, as numbers in the schema's samples: accept both; absent means 0.
    private static long Int64(JsonElement data, string name)
    {
        if (!data.TryGetProperty(name, out var value))
        {
            return 0;
        }

        return value.ValueKind switch
        {
            JsonValueKind.Number => value.GetInt64(),
            JsonValueKind.String when long.TryParse(value.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var parsed) => parsed,
            _ => throw new FormatException($"StorageObjectData {name} is not an integer."),
        };
    }
}
