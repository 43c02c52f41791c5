using System.Text.Json;
using System.Text.Json.Serialization;

namespace ReverseImageSearch.Core;

/// <summary>The one JSON convention of the product: camelCase names as the original's payloads, enums by name.</summary>
public static class CoreJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        // Enums by name, so queued payloads read as what they mean.
        Converters = { new JsonStringEnumConverter() },
    };
}
