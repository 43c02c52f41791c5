using System.Text.Json;

namespace ReverseImageSearch.Core;

/// <summary>The one JSON convention of the product: camelCase names, as the original's payloads.</summary>
public static class CoreJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web);
}
