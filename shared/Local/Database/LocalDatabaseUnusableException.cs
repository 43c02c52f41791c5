using Microsoft.Data.Sqlite;

namespace ReverseImageSearch.Local.Database;

/// <summary>
/// The local database file cannot be opened or written (damaged, not SQLite, read-only, full disk): the
/// message names the file, SQLite's reason and what to do, in one line a command can print as it is.
/// </summary>
public sealed class LocalDatabaseUnusableException(string filePath, SqliteException cause)
    : Exception(Describe(filePath, cause), cause)
{
    private const int SqliteCorrupt = 11;
    private const int SqliteNotADatabase = 26;

    public string FilePath { get; } = filePath;

    /// <summary>Whether SQLite found the file damaged (corrupt pages, or not a database at all).</summary>
    public static bool IsDamage(SqliteException exception) =>
        exception?.SqliteErrorCode is SqliteCorrupt or SqliteNotADatabase;

    private static string Describe(string filePath, SqliteException cause)
    {
        var reason = cause.Message.TrimEnd('.');
        var folder = Path.GetDirectoryName(filePath);

        // Everything in the data folder is derived from the images folder, so starting over loses nothing.
        return IsDamage(cause)
            ? $"The local database {filePath} is damaged ({reason}): stop the emulator, move its data folder {folder} aside (or delete it) and run index or serve again, which indexes the images folder again."
            : $"The local database {filePath} cannot be used: {reason}. Free space or fix its permissions if that is the cause; if it is damaged, move its data folder {folder} aside (the next start indexes the images folder again).";
    }
}
