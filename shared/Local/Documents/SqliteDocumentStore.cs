using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Local.Database;
using ReverseImageSearch.Local.Tasks;

namespace ReverseImageSearch.Local.Documents;

/// <summary>
/// Firestore's document model in the local SQLite database. Writes are serialised by the database, so a
/// transaction is simply one SQLite write transaction: it never conflicts and its body runs once.
/// A committed write that changes a watched document which existed before and after (Firestore's
/// "updated" trigger) enqueues a <see cref="LocalEventQueues.DocumentUpdated"/> task in the same SQLite
/// transaction; <see cref="DecodeChange"/> turns its payload back into a <see cref="DocumentChange"/>.
/// </summary>
public sealed class SqliteDocumentStore : IDocumentStore
{
    private readonly LocalDatabase _database;
    private readonly SqliteTaskQueue _taskQueue;
    private readonly HashSet<string> _watchedPaths;
    private readonly TimeProvider _timeProvider;

    public SqliteDocumentStore(LocalDatabase database, SqliteTaskQueue taskQueue, IEnumerable<string> watchedPaths, TimeProvider timeProvider)
    {
        _database = database;
        _taskQueue = taskQueue;
        _timeProvider = timeProvider;
        _watchedPaths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in watchedPaths)
        {
            ValidatePath(path);
            _watchedPaths.Add(path);
        }
    }

    public Task<DocumentSnapshot?> GetAsync(string path, CancellationToken cancellationToken = default)
    {
        ValidatePath(path);
        return _database.ReadAsync(connection => Load(connection, transaction: null, path)?.ToSnapshot(), cancellationToken);
    }

    /// <summary>The documents directly in a collection (not in its sub-collections), ordered by path.</summary>
    public Task<IReadOnlyList<DocumentSnapshot>> ListAsync(string collectionPath, CancellationToken cancellationToken = default)
    {
        ValidatePath(collectionPath + "/document");
        return _database.ReadAsync<IReadOnlyList<DocumentSnapshot>>(connection =>
        {
            using var command = connection.CreateCommand();
            // Paths between "collection/" and "collection0" ('0' follows '/'), without a further '/'.
            command.CommandText = """
                SELECT path, fields, create_time, update_time FROM documents
                WHERE path > $prefix AND path < $end AND instr(substr(path, length($prefix) + 1), '/') = 0
                ORDER BY path
                """;
            command.Parameters.AddWithValue("$prefix", collectionPath + "/");
            command.Parameters.AddWithValue("$end", collectionPath + "0");
            using var reader = command.ExecuteReader();
            var documents = new List<DocumentSnapshot>();
            while (reader.Read())
            {
                documents.Add(new StoredDocument(reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3)).ToSnapshot());
            }

            return documents;
        }, cancellationToken);
    }

    public Task SetAsync(string path, IReadOnlyDictionary<string, object?> fields, SetMode mode, CancellationToken cancellationToken = default)
    {
        var set = DocumentWrite.ForSet(path, fields, mode);
        return _database.WriteAsync(write => Commit(write, [set]), cancellationToken);
    }

    public Task<bool> CreateAsync(string path, IReadOnlyDictionary<string, object?> fields, CancellationToken cancellationToken = default)
    {
        var set = DocumentWrite.ForSet(path, fields, SetMode.Overwrite);
        return _database.WriteAsync(write =>
        {
            if (Load(write.Connection, write.Transaction, path) is not null)
            {
                return false;
            }

            Commit(write, [set]);
            return true;
        }, cancellationToken);
    }

    public Task DeleteAsync(string path, CancellationToken cancellationToken = default)
    {
        var delete = DocumentWrite.ForDelete(path);
        return _database.WriteAsync(write => Commit(write, [delete]), cancellationToken);
    }

    public Task<T> RunTransactionAsync<T>(Func<IDocumentTransaction, CancellationToken, Task<T>> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return _database.WriteAsync(async write =>
        {
            var transaction = new BufferedTransaction(write);
            try
            {
                var result = await body(transaction, cancellationToken);
                Commit(write, transaction.TakeWrites());
                return result;
            }
            finally
            {
                transaction.Close();
            }
        }, cancellationToken);
    }

    /// <summary>Turns the payload of a <see cref="LocalEventQueues.DocumentUpdated"/> task back into the change.</summary>
    public static DocumentChange DecodeChange(JsonElement payload)
    {
        var path = payload.GetProperty("path").GetString()
            ?? throw new FormatException("A document change payload has no path.");
        return new DocumentChange(path, DecodeSnapshot(path, payload, "before"), DecodeSnapshot(path, payload, "after"));
    }

    private void Commit(LocalWrite write, IReadOnlyList<DocumentWrite> writes)
    {
        long? commitTime = null;
        foreach (var path in writes.Select(w => w.Path).Distinct(StringComparer.Ordinal))
        {
            var before = Load(write.Connection, write.Transaction, path);
            var fields = before is null ? null : TypedFieldCodec.Decode(before.EncodedFields);
            foreach (var change in writes.Where(w => w.Path == path))
            {
                fields = change.ApplyTo(fields);
            }

            var afterEncoded = fields is null ? null : TypedFieldCodec.Encode(fields);
            if (afterEncoded == before?.EncodedFields)
            {
                // Firestore keeps a document's update time, and fires no trigger, when a write changes nothing.
                continue;
            }

            commitTime ??= NextCommitTime(write);
            if (afterEncoded is null)
            {
                using var delete = write.Command("DELETE FROM documents WHERE path = $path");
                delete.Parameters.AddWithValue("$path", path);
                delete.ExecuteNonQuery();
                continue;
            }

            var after = new StoredDocument(path, afterEncoded, before?.CreateTime ?? commitTime.Value, commitTime.Value);
            using (var upsert = write.Command("""
                INSERT INTO documents (path, fields, create_time, update_time) VALUES ($path, $fields, $createTime, $updateTime)
                ON CONFLICT (path) DO UPDATE SET fields = excluded.fields, update_time = excluded.update_time
                """))
            {
                upsert.Parameters.AddWithValue("$path", path);
                upsert.Parameters.AddWithValue("$fields", after.EncodedFields);
                upsert.Parameters.AddWithValue("$createTime", after.CreateTime);
                upsert.Parameters.AddWithValue("$updateTime", after.UpdateTime);
                upsert.ExecuteNonQuery();
            }

            if (before is not null && _watchedPaths.Contains(path))
            {
                _taskQueue.EnqueueWithin(write, LocalEventQueues.DocumentUpdated, EncodeChange(before, after), taskOptions: null);
            }
        }
    }

    /// <summary>Now, or just after the last commit time given out, whichever is later: update times only increase.</summary>
    private long NextCommitTime(LocalWrite write)
    {
        using var read = write.Command("SELECT last_commit_time FROM document_clock WHERE id = 1");
        var last = read.ExecuteScalar() as long?;
        var now = _timeProvider.GetUtcNow().UtcTicks;
        var next = last is { } previous && previous >= now ? previous + 1 : now;
        using var store = write.Command("""
            INSERT INTO document_clock (id, last_commit_time) VALUES (1, $time)
            ON CONFLICT (id) DO UPDATE SET last_commit_time = excluded.last_commit_time
            """);
        store.Parameters.AddWithValue("$time", next);
        store.ExecuteNonQuery();
        return next;
    }

    private static StoredDocument? Load(SqliteConnection connection, SqliteTransaction? transaction, string path)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT fields, create_time, update_time FROM documents WHERE path = $path";
        command.Parameters.AddWithValue("$path", path);
        using var reader = command.ExecuteReader();
        return reader.Read()
            ? new StoredDocument(path, reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2))
            : null;
    }

    private static string EncodeChange(StoredDocument before, StoredDocument after)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("path", after.Path);
            WriteSnapshot(writer, "before", before);
            WriteSnapshot(writer, "after", after);
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteSnapshot(Utf8JsonWriter writer, string name, StoredDocument document)
    {
        writer.WriteStartObject(name);
        writer.WritePropertyName("fields");
        writer.WriteRawValue(document.EncodedFields);
        writer.WriteString("createTime", ToTime(document.CreateTime).ToString("O", CultureInfo.InvariantCulture));
        writer.WriteString("updateTime", ToTime(document.UpdateTime).ToString("O", CultureInfo.InvariantCulture));
        writer.WriteEndObject();
    }

    private static DocumentSnapshot? DecodeSnapshot(string path, JsonElement payload, string name)
    {
        if (!payload.TryGetProperty(name, out var snapshot) || snapshot.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var updateTime = DateTimeOffset.ParseExact(
            snapshot.GetProperty("updateTime").GetString()!, "O", CultureInfo.InvariantCulture, DateTimeStyles.None);
        return new DocumentSnapshot(path, TypedFieldCodec.Decode(snapshot.GetProperty("fields")), updateTime);
    }

    private static DateTimeOffset ToTime(long utcTicks) => new(utcTicks, TimeSpan.Zero);

    /// <summary>Firestore's document paths: collection/document pairs of non-empty segments.</summary>
    internal static void ValidatePath(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var segments = path.Split('/');
        if (segments.Length % 2 != 0 || segments.Any(segment => segment.Length == 0))
        {
            throw new ArgumentException(
                $"'{path}' is not a document path: it needs an even number of non-empty segments (collection/document/...).", nameof(path));
        }
    }

    private sealed record StoredDocument(string Path, string EncodedFields, long CreateTime, long UpdateTime)
    {
        public DocumentSnapshot ToSnapshot() => new(Path, TypedFieldCodec.Decode(EncodedFields), ToTime(UpdateTime));
    }

    /// <summary>A transaction body's view: reads go to the open SQLite write transaction, writes are buffered.</summary>
    private sealed class BufferedTransaction(LocalWrite write) : IDocumentTransaction
    {
        // The body may start reads concurrently; one SQLite connection must not be used by two at once.
        private readonly Lock _gate = new();
        private readonly List<DocumentWrite> _writes = [];
        private bool _closed;

        public Task<DocumentSnapshot?> GetAsync(string path, CancellationToken cancellationToken = default)
        {
            ValidatePath(path);
            cancellationToken.ThrowIfCancellationRequested();
            lock (_gate)
            {
                ThrowIfClosed();
                if (_writes.Count > 0)
                {
                    throw new InvalidOperationException("A transaction must do all its reads before its writes (as Firestore requires).");
                }

                return Task.FromResult(Load(write.Connection, write.Transaction, path)?.ToSnapshot());
            }
        }

        public void Set(string path, IReadOnlyDictionary<string, object?> fields, SetMode mode) => Add(DocumentWrite.ForSet(path, fields, mode));

        public void Delete(string path) => Add(DocumentWrite.ForDelete(path));

        public IReadOnlyList<DocumentWrite> TakeWrites()
        {
            lock (_gate)
            {
                _closed = true;
                return [.. _writes];
            }
        }

        public void Close()
        {
            lock (_gate)
            {
                _closed = true;
            }
        }

        private void Add(DocumentWrite documentWrite)
        {
            lock (_gate)
            {
                ThrowIfClosed();
                _writes.Add(documentWrite);
            }
        }

        private void ThrowIfClosed()
        {
            if (_closed)
            {
                throw new InvalidOperationException("The transaction is over; it cannot be used after its body returned.");
            }
        }
    }
}
