using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ReverseImageSearch.Local.Database;

/// <summary>
/// The one SQLite file that holds the local documents and task queue. Sharing it lets a document write
/// and the change event it causes commit in one SQLite transaction.
/// SQLite allows one writer at a time, so writes through this instance are serialised here; readers use
/// their own pooled connections and, in WAL mode, never wait for the writer.
/// A file found damaged while in use (SQLite says corrupt, or not a database) is recorded in <see cref="Problem"/>,
/// logged once, and every later failure of the kind is a <see cref="LocalDatabaseUnusableException"/>: the
/// health check reports it (<see cref="LocalDatabaseHealthCheck"/>) instead of a stack trace every poll.
/// </summary>
public sealed partial class LocalDatabase : IDisposable
{
    private const int SchemaVersion = 1;
    private const int SqliteReadOnly = 8;
    private const int SqliteCantOpen = 14;

    private static readonly TimeSpan BusyTimeout = TimeSpan.FromSeconds(30);

    // Writes of this process queue here rather than spinning on SQLITE_BUSY; other processes on the same
    // file are handled by SQLite's busy timeout.
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    // Detects a write started from inside another write of the same flow, which would otherwise deadlock.
    private readonly AsyncLocal<bool> _insideWrite = new();

    private readonly string _connectionString;
    private readonly ILogger<LocalDatabase> _logger;
    private readonly bool _readOnly;
    private LocalDatabaseUnusableException? _problem;
    private bool _disposed;

    /// <param name="readOnly">
    /// Open an existing file for reading only (a query): nothing is created or written, not even a journal,
    /// so a data folder the process may not write is read as it is. Writes then throw.
    /// </param>
    public LocalDatabase(string filePath, ILogger<LocalDatabase>? logger = null, bool readOnly = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(filePath);
        FilePath = Path.GetFullPath(filePath);
        _logger = logger ?? NullLogger<LocalDatabase>.Instance;
        _readOnly = readOnly;
        var directory = Path.GetDirectoryName(FilePath);
        if (!readOnly && !string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        try
        {
            if (readOnly)
            {
                _connectionString = OpenReadOnly();
            }
            else
            {
                _connectionString = ConnectionString(FilePath, SqliteOpenMode.ReadWriteCreate);
                CreateSchema();
            }
        }
        catch (SqliteException e)
        {
            throw new LocalDatabaseUnusableException(FilePath, e);
        }
    }

    public string FilePath { get; }

    /// <summary>Why the file cannot be used any more (found damaged while in use); null while it is sound.</summary>
    public LocalDatabaseUnusableException? Problem => Volatile.Read(ref _problem);

    /// <summary>Runs <paramref name="read"/> on a connection of its own, concurrently with other reads and the writer.</summary>
    internal Task<T> ReadAsync<T>(Func<SqliteConnection, T> read, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            using var connection = Open();
            return Task.FromResult(read(connection));
        }
        catch (SqliteException e) when (LocalDatabaseUnusableException.IsDamage(e))
        {
            throw Damaged(e);
        }
    }

    /// <summary>
    /// Runs <paramref name="write"/> inside one SQLite write transaction, after every earlier write of this
    /// instance has finished. Commits when it returns, rolls back when it throws; the callbacks the body
    /// registered with <see cref="LocalWrite.AfterCommit"/> run after a successful commit.
    /// </summary>
    internal async Task<T> WriteAsync<T>(Func<LocalWrite, Task<T>> write, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_readOnly)
        {
            throw new InvalidOperationException($"The local database {FilePath} was opened for reading only.");
        }

        if (_insideWrite.Value)
        {
            throw new InvalidOperationException(
                "A local database write was started inside another write (for example a plain document write inside a transaction body); it would wait for itself.");
        }

        await _writeLock.WaitAsync(cancellationToken);
        LocalWrite? scope = null;
        try
        {
            _insideWrite.Value = true;
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
        catch (SqliteException e) when (LocalDatabaseUnusableException.IsDamage(e))
        {
            throw Damaged(e);
        }
        finally
        {
            _insideWrite.Value = false;
            _writeLock.Release();
            if (scope is not null)
            {
                scope.RunAfterCommit(exception => LogAfterCommitCallbackFailed(_logger, exception));
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
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        // Pooled connections keep the file open; release them so the file can be moved or deleted.
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
        _writeLock.Dispose();
    }

    private static string ConnectionString(string dataSource, SqliteOpenMode mode) => new SqliteConnectionStringBuilder
    {
        DataSource = dataSource,
        Mode = mode,
        Pooling = true,
        DefaultTimeout = (int)BusyTimeout.TotalSeconds,
    }.ToString();

    private SqliteConnection Open() => Open(_connectionString);

    private static SqliteConnection Open(string connectionString)
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

    /// <summary>Records the damage (logged once, in one line) and returns the exception that names it.</summary>
    private LocalDatabaseUnusableException Damaged(SqliteException cause)
    {
        var unusable = new LocalDatabaseUnusableException(FilePath, cause);
        if (Interlocked.CompareExchange(ref _problem, unusable, null) is null)
        {
            LogDamaged(_logger, unusable.Message);
        }

        return unusable;
    }

    /// <summary>
    /// The connection string of a read-only open that works. A file in WAL mode is read through its -shm file,
    /// which SQLite cannot create in a folder it may not write (SQLITE_READONLY or SQLITE_CANTOPEN); with no
    /// -wal file there is no writer and every committed page is in the file itself, so it is read as immutable.
    /// </summary>
    private string OpenReadOnly()
    {
        var plain = ConnectionString(FilePath, SqliteOpenMode.ReadOnly);
        try
        {
            CheckReadable(plain);
            return plain;
        }
        catch (SqliteException e) when (e.SqliteErrorCode is SqliteReadOnly or SqliteCantOpen && File.Exists(FilePath) && !File.Exists(FilePath + "-wal"))
        {
            var immutable = ConnectionString(new Uri(FilePath).AbsoluteUri + "?immutable=1", SqliteOpenMode.ReadOnly);
            CheckReadable(immutable);
            return immutable;
        }
    }

    /// <summary>Reads the file's header and schema, so a file that is no database or cannot be read fails here.</summary>
    private static void CheckReadable(string connectionString)
    {
        using var connection = Open(connectionString);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM sqlite_master";
        command.ExecuteScalar();
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
                LogWalUnavailable(_logger, FilePath, mode);
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

    [LoggerMessage(Level = LogLevel.Critical, Message = "{Problem}")]
    private static partial void LogDamaged(ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Error, Message = "A callback after a local database commit failed.")]
    private static partial void LogAfterCommitCallbackFailed(ILogger logger, Exception exception);
}
