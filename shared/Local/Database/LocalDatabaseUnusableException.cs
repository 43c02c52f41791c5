using Microsoft.Data.Sqlite;

namespace ReverseImageSearch.Local.Database;

/// <summary>
/// The local database file cannot be opened or written (damaged, not SQLite, read-only, full disk): the
/// message names the file, SQLite's reason and what to do, in one line a command can print as it is.
/// </summary>
public sealed class LocalDatabaseUnusableException(string filePath, SqliteException cause)
    : Exception($"The local database {filePath} cannot be used: {cause.Message.TrimEnd('.')}. Free space or fix its permissions if that is the cause; if it is damaged, move it aside (the next start backfills the images folder again).", cause)
{
    public string FilePath { get; } = filePath;
}
