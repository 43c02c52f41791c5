using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ReverseImageSearch.Local.Database;

/// <summary>
/// The one SQLite file that holds the local documents and task queue. Sharing it lets a document write
/// and the change event it causes commit in one SQLite transaction.
/// SQLite allows one writer at a time, so writes through this instance are serialised here; readers use
/// their own pooled connections and, in WAL mode, never wait for the writer.
/// </summary>
public sealed partial class LocalDatabase : IDisposable
{
    private const int SchemaVersion = 1;

    private static readonly TimeSpan BusyTimeout = TimeSpan.FromSeconds(30);

    // Writes of this process queue here rather than spinning on SQLITE_BUSY; other processes on the same
    // file are handled by SQLite's busy timeout.
    private readonly SemaphoreSlim writeLock = new(1, 1);

    // Detects a write started from inside another write of the same flow, which would otherwise deadlock.
    private readonly AsyncLocal<bool> insideWrite = new();

    private readonly string connectionString;
    private readonly ILogger<LocalDatabase> logger;
    private bool disposed;

    public LocalDatabase(string filePath, ILogger<LocalDatabase>? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(filePath);
        FilePath = Path.GetFullPath(filePath);
        this.logger = logger ?? NullLogger<LocalDatabase>.Instance;
        var directory = Path.GetDirectoryName(FilePath);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = FilePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = (int)BusyTimeout.TotalSeconds,
        }.ToString();

        try
        {
            CreateSchema();
        }
        catch (SqliteException e)
        {
            throw new LocalDatabaseUnusableException(FilePath, e);
        }
    }

    public string FilePath { get; }

    /// <summary>Runs <paramref name="read"/> on a connection of its own, concurrently with other reads and the writer.</summary>
    internal Task<T> ReadAsync<T>(Func<SqliteConnection, T> read, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        using var connection = Open();
        return Task.FromResult(read(connection));
    }

    /// <summary>
    /// Runs <paramref name="write"/> inside one SQLite write transaction, after every earlier write of this
    /// instance has finished. Commits when it returns, rolls back when it throws; the callbacks the body
    /// registered with <see cref="LocalWrite.AfterCommit"/> run after a successful commit.
    /// </summary>
    internal async Task<T> WriteAsync<T>(Func<LocalWrite, Task<T>> write, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (insideWrite.Value)
        {
            throw new InvalidOperationException(
                "A local database write was started inside another write (for example a plain document write inside a transaction body); it would wait for itself.");
        }

        await writeLock.WaitAsync(cancellationToken);
        LocalWrite? scope = null;
        try
        {
            insideWrite.Value = true;
            using var connection = Open();
            // IMMEDIATE takes the file's write lock up front, so reads inside the body see data no other
            // process can change before the commit.
            using var transaction = connection.BeginTransaction(deferred: false);
            scope = new LocalWrite(connection, transaction);
            var result = await write(scope);
            transaction.Commit();
            scope.MarkCommitted();
            return result;
        }
        finally
        {
            insideWrite.Value = false;
            writeLock.Release();
            if (scope is not null)
            {
                scope.RunAfterCommit(exception => LogAfterCommitCallbackFailed(logger, exception));
            }
        }
    }

    internal Task WriteAsync(Action<LocalWrite> write, CancellationToken cancellationToken) =>
        WriteAsync(scope =>
        {
            write(scope);
            return Task.FromResult(true);
        }, cancellationToken);

    internal Task<T> WriteAsync<T>(Func<LocalWrite, T> write, CancellationToken cancellationToken) =>
        WriteAsync(scope => Task.FromResult(write(scope)), cancellationToken);

    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        // Pooled connections keep the file open; release them so the file can be moved or deleted.
        using var connection = new SqliteConnection(connectionString);
        SqliteConnection.ClearPool(connection);
        writeLock.Dispose();
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(connectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        // Per connection: wait for another process's writer instead of failing, and with WAL a commit
        // needs no fsync of the main file (durable at checkpoint; survives a process crash).
        pragma.CommandText = $"PRAGMA busy_timeout = {(int)BusyTimeout.TotalMilliseconds}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";
        pragma.ExecuteNonQuery();
        return connection;
    }

    private void CreateSchema()
    {
        using var connection = Open();
        using (var wal = connection.CreateCommand())
        {
            // Stored in the file: set once, every later connection uses it.
            wal.CommandText = "PRAGMA journal_mode = WAL;";
            var mode = wal.ExecuteScalar() as string;
            if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
            {
                LogWalUnavailable(logger, FilePath, mode);
            }
        }

        using var transaction = connection.BeginTransaction(deferred: false);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = Schema.Sql + $"PRAGMA user_version = {SchemaVersion};";
        command.ExecuteNonQuery();
        foreach (var (table, column, definition) in Schema.AddedColumns)
        {
            command.CommandText = $"SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = '{column}'";
            if ((long)command.ExecuteScalar()! == 0)
            {
                command.CommandText = $"ALTER TABLE {table} ADD COLUMN {column} {definition}";
                command.ExecuteNonQuery();
            }
        }

        transaction.Commit();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "SQLite file {FilePath} is not in WAL mode (journal mode {Mode}); readers will wait for writers.")]
    private static partial void LogWalUnavailable(ILogger logger, string filePath, string? mode);

    [LoggerMessage(Level = LogLevel.Error, Message = "A callback after a local database commit failed.")]
    private static partial void LogAfterCommitCallbackFailed(ILogger logger, Exception exception);
}
