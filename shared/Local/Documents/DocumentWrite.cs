using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Local.Documents;

/// <summary>
/// One buffered write of a document. Field values are copied and checked when the write is made, so a
/// caller changing its dictionary afterwards cannot change what commits, and a bad value fails at once.
/// </summary>
internal sealed class DocumentWrite
{
    private readonly IReadOnlyDictionary<string, object?>? _values;
    private readonly IReadOnlyList<string> _deletedFields;
    private readonly SetMode _mode;

    private DocumentWrite(string path, IReadOnlyDictionary<string, object?>? values, IReadOnlyList<string> deletedFields, SetMode mode)
    {
        Path = path;
        _values = values;
        _deletedFields = deletedFields;
        _mode = mode;
    }

    public string Path { get; }

    public static DocumentWrite ForSet(string path, IReadOnlyDictionary<string, object?> fields, SetMode mode)
    {
        SqliteDocumentStore.ValidatePath(path);
        ArgumentNullException.ThrowIfNull(fields);
        var deleted = fields.Where(pair => pair.Value is FieldDelete).Select(pair => pair.Key).ToArray();
        if (deleted.Length > 0 && mode != SetMode.Merge)
        {
            throw new ArgumentException(
                $"FieldDelete.Value (field '{deleted[0]}') can only be used with SetMode.Merge.", nameof(fields));
        }

        var kept = fields.Where(pair => pair.Value is not FieldDelete).ToDictionary(StringComparer.Ordinal);
        // A round trip through the encoding is the deep copy, and normalises values to the stored types.
        var copy = TypedFieldCodec.Decode(TypedFieldCodec.Encode(kept));
        return new DocumentWrite(path, copy, deleted, mode);
    }

    public static DocumentWrite ForDelete(string path)
    {
        SqliteDocumentStore.ValidatePath(path);
        return new DocumentWrite(path, values: null, [], SetMode.Overwrite);
    }

    /// <summary>The document's fields after this write; null when the document is deleted.</summary>
    public IReadOnlyDictionary<string, object?>? ApplyTo(IReadOnlyDictionary<string, object?>? current)
    {
        if (_values is null)
        {
            return null;
        }

        if (_mode == SetMode.Overwrite || current is null)
        {
            return _values;
        }

        var merged = current.ToDictionary(StringComparer.Ordinal);
        foreach (var (name, value) in _values)
        {
            merged[name] = value;
        }

        foreach (var name in _deletedFields)
        {
            merged.Remove(name);
        }

        return merged;
    }
}
