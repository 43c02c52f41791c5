namespace ReverseImageSearch.Core.Ports;

/// <summary>
/// A document database with Firestore's model: documents addressed by slash-separated paths
/// (collection/doc/collection/doc), holding fields of plain values.
/// Field values are: null, bool, long, double, string, DateTimeOffset, byte[],
/// IReadOnlyList&lt;object?&gt; and IReadOnlyDictionary&lt;string, object?&gt; (nested). Firestore references
/// read as their path string and geo points as a map {latitude, longitude}.
/// Adapters normalise other integer types to long.
/// </summary>
public interface IDocumentStore
{
    Task<DocumentSnapshot?> GetAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes the document, creating it when missing. <see cref="SetMode.Merge"/> writes only the given
    /// top-level fields and keeps the others; <see cref="SetMode.Overwrite"/> replaces the whole document.
    /// </summary>
    Task SetAsync(string path, IReadOnlyDictionary<string, object?> fields, SetMode mode, CancellationToken cancellationToken = default);

    /// <summary>Creates the document only if it does not exist; false when it already existed.</summary>
    Task<bool> CreateAsync(string path, IReadOnlyDictionary<string, object?> fields, CancellationToken cancellationToken = default);

    /// <summary>Deletes the document; deleting a missing document is not an error.</summary>
    Task DeleteAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// Runs <paramref name="body"/> as one atomic read-then-write transaction. All reads happen before
    /// the writes it buffers; the writes commit together or not at all. On contention the adapter runs
    /// the body again, so the body must have no side effects outside the transaction.
    /// </summary>
    Task<T> RunTransactionAsync<T>(Func<IDocumentTransaction, CancellationToken, Task<T>> body, CancellationToken cancellationToken = default);
}

public interface IDocumentTransaction
{
    Task<DocumentSnapshot?> GetAsync(string path, CancellationToken cancellationToken = default);

    void Set(string path, IReadOnlyDictionary<string, object?> fields, SetMode mode);

    void Delete(string path);
}

public enum SetMode
{
    Overwrite,
    Merge,
}

/// <summary>A document as read: its fields and the server's update time.</summary>
public sealed class DocumentSnapshot(string path, IReadOnlyDictionary<string, object?> fields, DateTimeOffset? updateTime = null)
{
    public string Path { get; } = path;

    public IReadOnlyDictionary<string, object?> Fields { get; } = fields;

    public DateTimeOffset? UpdateTime { get; } = updateTime;

    public object? this[string field] => Fields.TryGetValue(field, out var value) ? value : null;

    public string? GetString(string field) => this[field] as string;

    /// <summary>The field as a whole number, accepting the double form JSON-based stores may give back.</summary>
    public long? GetInt64(string field) => this[field] switch
    {
        long l => l,
        int i => i,
        double d when d == Math.Floor(d) => (long)d,
        _ => null,
    };
}
