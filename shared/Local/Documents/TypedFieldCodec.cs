using System.Collections;
using System.Collections.ObjectModel;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Local.Documents;

/// <summary>
/// The document store's JSON encoding of field values. Every value is an object naming its type
/// ({"int": 5}, {"double": 5.0}, {"time": "..."}, ...), so a read gives back the same CLR type that was
/// written: plain JSON would turn 5L and 5.0 into the same number. Map keys are written in ordinal order,
/// which makes equal documents encode to equal text (how the store tells a real change from a no-op).
/// Decoded values are read-only: snapshots handed out cannot be changed by their receivers.
/// </summary>
public static class TypedFieldCodec
{
    private const string NullTag = "null";
    private const string BoolTag = "bool";
    private const string IntTag = "int";
    private const string DoubleTag = "double";
    private const string StringTag = "string";
    private const string TimeTag = "time";
    private const string BytesTag = "bytes";
    private const string ListTag = "list";
    private const string MapTag = "map";

    /// <summary>The fields as one JSON object of typed values.</summary>
    public static string Encode(IReadOnlyDictionary<string, object?> fields)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            WriteFields(writer, fields);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static void WriteFields(Utf8JsonWriter writer, IReadOnlyDictionary<string, object?> fields)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(fields);
        WriteMapEntries(writer, fields.Select(pair => new KeyValuePair<string, object?>(pair.Key, pair.Value)), fieldPath: "");
    }

    public static IReadOnlyDictionary<string, object?> Decode(string encodedFields)
    {
        using var document = JsonDocument.Parse(encodedFields);
        return Decode(document.RootElement);
    }

    public static IReadOnlyDictionary<string, object?> Decode(JsonElement encodedFields)
    {
        if (encodedFields.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException($"Encoded document fields must be a JSON object, not {encodedFields.ValueKind}.");
        }

        var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var property in encodedFields.EnumerateObject())
        {
            fields[property.Name] = ReadValue(property.Value);
        }

        return fields.AsReadOnly();
    }

    private static void WriteMapEntries(Utf8JsonWriter writer, IEnumerable<KeyValuePair<string, object?>> entries, string fieldPath)
    {
        writer.WriteStartObject();
        foreach (var (key, value) in entries.OrderBy(pair => pair.Key, StringComparer.Ordinal))
        {
            writer.WritePropertyName(key);
            WriteValue(writer, value, fieldPath.Length == 0 ? key : fieldPath + "." + key);
        }

        writer.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter writer, object? value, string fieldPath)
    {
        writer.WriteStartObject();
        switch (value)
        {
            case null:
                writer.WriteNull(NullTag);
                break;
            case bool b:
                writer.WriteBoolean(BoolTag, b);
                break;
            case long or int or short or sbyte or byte or ushort or uint:
                writer.WriteNumber(IntTag, Convert.ToInt64(value, CultureInfo.InvariantCulture));
                break;
            case ulong u when u <= long.MaxValue:
                writer.WriteNumber(IntTag, (long)u);
                break;
            case double or float:
                WriteDouble(writer, Convert.ToDouble(value, CultureInfo.InvariantCulture));
                break;
            case string s:
                writer.WriteString(StringTag, s);
                break;
            case DateTimeOffset time:
                writer.WriteString(TimeTag, time.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture));
                break;
            case DateTime time:
                writer.WriteString(TimeTag, new DateTimeOffset(time.ToUniversalTime(), TimeSpan.Zero).ToString("O", CultureInfo.InvariantCulture));
                break;
            case byte[] bytes:
                writer.WriteBase64String(BytesTag, bytes);
                break;
            case FieldDelete:
                throw new ArgumentException(
                    $"Field '{fieldPath}': FieldDelete.Value removes a top-level field in a merge; it cannot be stored.", nameof(value));
            case IEnumerable<KeyValuePair<string, object?>> map:
                writer.WritePropertyName(MapTag);
                WriteMapEntries(writer, map, fieldPath);
                break;
            case IDictionary map:
                writer.WritePropertyName(MapTag);
                WriteMapEntries(writer, ToEntries(map, fieldPath), fieldPath);
                break;
            case IEnumerable list:
                writer.WriteStartArray(ListTag);
                var index = 0;
                foreach (var item in list)
                {
                    WriteValue(writer, item, $"{fieldPath}[{index++}]");
                }

                writer.WriteEndArray();
                break;
            default:
                throw new ArgumentException(
                    $"Field '{fieldPath}' holds a {value.GetType().Name}; document fields hold null, bool, integers, double, string, DateTimeOffset, byte[], lists and string-keyed maps.",
                    nameof(value));
        }

        writer.WriteEndObject();
    }

    private static void WriteDouble(Utf8JsonWriter writer, double value)
    {
        if (double.IsFinite(value))
        {
            writer.WriteNumber(DoubleTag, value);
        }
        else
        {
            // JSON numbers have no NaN or infinities.
            writer.WriteString(DoubleTag, value.ToString(CultureInfo.InvariantCulture));
        }
    }

    private static IEnumerable<KeyValuePair<string, object?>> ToEntries(IDictionary map, string fieldPath)
    {
        foreach (DictionaryEntry entry in map)
        {
            if (entry.Key is not string key)
            {
                throw new ArgumentException($"Field '{fieldPath}' is a map with a {entry.Key.GetType().Name} key; map keys must be strings.", nameof(map));
            }

            yield return new KeyValuePair<string, object?>(key, entry.Value);
        }
    }

    private static object? ReadValue(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException($"An encoded field value must be a JSON object, not {element.ValueKind}.");
        }

        using var properties = element.EnumerateObject();
        if (!properties.MoveNext())
        {
            throw new FormatException("An encoded field value is an empty object.");
        }

        var tagged = properties.Current;
        var value = tagged.Value;
        return tagged.Name switch
        {
            NullTag => null,
            BoolTag => value.GetBoolean(),
            IntTag => value.GetInt64(),
            DoubleTag => value.ValueKind == JsonValueKind.String
                ? double.Parse(value.GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture)
                : value.GetDouble(),
            StringTag => value.GetString(),
            TimeTag => DateTimeOffset.ParseExact(value.GetString()!, "O", CultureInfo.InvariantCulture, DateTimeStyles.None),
            BytesTag => value.GetBytesFromBase64(),
            ListTag => ReadList(value),
            MapTag => Decode(value),
            _ => throw new FormatException($"Unknown encoded field type '{tagged.Name}'."),
        };
    }

    private static ReadOnlyCollection<object?> ReadList(JsonElement array)
    {
        var items = new object?[array.GetArrayLength()];
        var index = 0;
        foreach (var item in array.EnumerateArray())
        {
            items[index++] = ReadValue(item);
        }

        return Array.AsReadOnly(items);
    }
}
