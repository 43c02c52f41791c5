using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ReverseImageSearch.Gcp.Firestore;

/// <summary>
/// Firestore's typed JSON values (REST v1 <c>Value</c>) to and from the plain values of
/// <see cref="Core.Ports.IDocumentStore"/>: null, bool, long, double, string, DateTimeOffset, lists and maps.
/// </summary>
public static class FirestoreValues
{
    public static JsonObject EncodeFields(IEnumerable<KeyValuePair<string, object?>> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var result = new JsonObject();
        foreach (var (key, value) in fields)
        {
            result[key] = Encode(value);
        }

        return result;
    }

    public static JsonObject Encode(object? value) => value switch
    {
        null => new JsonObject { ["nullValue"] = null },
        bool b => new JsonObject { ["booleanValue"] = b },
        string s => new JsonObject { ["stringValue"] = s },
        long or int or short or sbyte or byte or ushort or uint =>
            new JsonObject { ["integerValue"] = Convert.ToInt64(value, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture) },
        ulong u => u <= long.MaxValue
            ? new JsonObject { ["integerValue"] = u.ToString(CultureInfo.InvariantCulture) }
            : throw new ArgumentOutOfRangeException(nameof(value), u, "Firestore integers are signed 64-bit."),
        double d => EncodeDouble(d),
        float f => EncodeDouble(f),
        decimal m => EncodeDouble((double)m),
        DateTimeOffset t => new JsonObject { ["timestampValue"] = FormatTimestamp(t) },
        DateTime t => new JsonObject { ["timestampValue"] = FormatTimestamp(new DateTimeOffset(t.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(t, DateTimeKind.Utc) : t)) },
        byte[] bytes => new JsonObject { ["bytesValue"] = Convert.ToBase64String(bytes) },
        ReadOnlyMemory<byte> memory => new JsonObject { ["bytesValue"] = Convert.ToBase64String(memory.Span) },
        JsonElement element => Encode(FromJsonElement(element)),
        IReadOnlyDictionary<string, object?> map => new JsonObject { ["mapValue"] = MapBody(map) },
        IDictionary<string, object?> map => new JsonObject { ["mapValue"] = MapBody(map) },
        IEnumerable list => new JsonObject { ["arrayValue"] = ArrayBody(list) },
        Core.Ports.FieldDelete => throw new ArgumentException("FieldDelete.Value is only allowed as a top-level field written with SetMode.Merge."),
        _ => throw new ArgumentException($"Values of type {value.GetType()} cannot be stored in a document."),
    };

    public static string FormatTimestamp(DateTimeOffset t) =>
        t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    public static Dictionary<string, object?> DecodeFields(JsonElement fields)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (fields.ValueKind != JsonValueKind.Object)
        {
            return result;
        }

        foreach (var property in fields.EnumerateObject())
        {
            result[property.Name] = Decode(property.Value);
        }

        return result;
    }

    public static object? Decode(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new JsonException($"A Firestore value must be an object, not {value.ValueKind}.");
        }

        foreach (var property in value.EnumerateObject())
        {
            var v = property.Value;
            switch (property.Name)
            {
                case "nullValue":
                    return null;
                case "booleanValue":
                    return v.GetBoolean();
                case "integerValue":
                    return v.ValueKind == JsonValueKind.String
                        ? long.Parse(v.GetString()!, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture)
                        : v.GetInt64();
                case "doubleValue":
                    return v.ValueKind == JsonValueKind.String
                        ? double.Parse(v.GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture)
                        : v.GetDouble();
                case "timestampValue":
                    return DateTimeOffset.Parse(v.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
                case "stringValue":
                    return v.GetString();
                case "bytesValue":
                    return Convert.FromBase64String(v.GetString()!);
                case "referenceValue":
                    return v.GetString();
                case "geoPointValue":
                    return new Dictionary<string, object?>
                    {
                        ["latitude"] = v.TryGetProperty("latitude", out var lat) ? lat.GetDouble() : 0d,
                        ["longitude"] = v.TryGetProperty("longitude", out var lng) ? lng.GetDouble() : 0d,
                    };
                case "arrayValue":
                    return v.TryGetProperty("values", out var values) && values.ValueKind == JsonValueKind.Array
                        ? values.EnumerateArray().Select(Decode).ToArray()
                        : Array.Empty<object?>();
                case "mapValue":
                    return v.TryGetProperty("fields", out var fields) ? DecodeFields(fields) : new Dictionary<string, object?>();
                default:
                    continue;
            }
        }

        throw new JsonException($"Unknown Firestore value: {value.GetRawText()}");
    }

    /// <summary>
    /// A vector value (what the SDKs' FieldValue.vector writes): a map whose __type__ is "__vector__" and whose
    /// value is the array of components as doubles. findNearest only matches fields of this shape.
    /// </summary>
    public static JsonObject EncodeVector(ReadOnlySpan<float> components)
    {
        var values = new JsonArray();
        foreach (var component in components)
        {
            values.Add(new JsonObject { ["doubleValue"] = (double)component });
        }

        return new JsonObject
        {
            ["mapValue"] = new JsonObject
            {
                ["fields"] = new JsonObject
                {
                    ["__type__"] = new JsonObject { ["stringValue"] = "__vector__" },
                    ["value"] = new JsonObject { ["arrayValue"] = new JsonObject { ["values"] = values } },
                },
            },
        };
    }

    /// <summary>The components of a vector value (<see cref="EncodeVector"/>'s shape); null when the value is not one.</summary>
    public static float[]? DecodeVector(JsonElement value)
    {
        if (!value.TryGetProperty("mapValue", out var map) || !map.TryGetProperty("fields", out var fields)
            || !fields.TryGetProperty("value", out var inner) || !inner.TryGetProperty("arrayValue", out var array))
        {
            return null;
        }

        if (!array.TryGetProperty("values", out var values) || values.ValueKind != JsonValueKind.Array)
        {
            return [];
        }

        var components = new float[values.GetArrayLength()];
        var i = 0;
        foreach (var component in values.EnumerateArray())
        {
            components[i++] = Convert.ToSingle(Decode(component), CultureInfo.InvariantCulture);
        }

        return components;
    }

    /// <summary>A field path segment as Firestore wants it: plain when a simple identifier, else back-quoted.</summary>
    public static string QuoteFieldPath(string field)
    {
        ArgumentException.ThrowIfNullOrEmpty(field);
        if (IsSimple(field))
        {
            return field;
        }

        var sb = new StringBuilder(field.Length + 2).Append('`');
        foreach (var c in field)
        {
            if (c is '`' or '\\')
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }

        return sb.Append('`').ToString();
    }

    private static bool IsSimple(string field)
    {
        if (!(char.IsAsciiLetter(field[0]) || field[0] == '_'))
        {
            return false;
        }

        foreach (var c in field)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '_'))
            {
                return false;
            }
        }

        return true;
    }

    private static JsonObject EncodeDouble(double d) =>
        double.IsFinite(d)
            ? new JsonObject { ["doubleValue"] = d }
            : new JsonObject { ["doubleValue"] = double.IsNaN(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity" };

    private static JsonObject MapBody(IEnumerable<KeyValuePair<string, object?>> map)
    {
        var fields = EncodeFields(map);
        return fields.Count == 0 ? [] : new JsonObject { ["fields"] = fields };
    }

    private static JsonObject ArrayBody(IEnumerable list)
    {
        var values = new JsonArray();
        foreach (var item in list)
        {
            values.Add(Encode(item));
        }

        return values.Count == 0 ? [] : new JsonObject { ["values"] = values };
    }

    private static object? FromJsonElement(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJsonElement).ToArray(),
        _ => e.EnumerateObject().ToDictionary(p => p.Name, p => FromJsonElement(p.Value)),
    };
}
