using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Local.Database;
using ReverseImageSearch.Local.Tasks;

namespace ReverseImageSearch.Tests.Local.Tasks;

/// <summary>A local database file in a temporary directory that is removed with it; reopenable to test durability.</summary>
public sealed class TestDatabase : IDisposable
{
    private readonly List<LocalDatabase> _opened = [];

    public TestDatabase()
    {
        Directory = Path.Combine(Path.GetTempPath(), "ris-localdb-" + Guid.NewGuid().ToString("N"));
        FilePath = Path.Combine(Directory, "nested", "local.db");
        Database = Open();
    }

    public string Directory { get; }

    public string FilePath { get; }

    public ManualTimeProvider Clock { get; } = new();

    public LocalDatabase Database { get; private set; }

    /// <summary>Another connection set over the same file, as a restarted process would open it.</summary>
    public LocalDatabase Open()
    {
        var database = new LocalDatabase(FilePath, NullLogger<LocalDatabase>.Instance);
        _opened.Add(database);
        return database;
    }

    /// <summary>Closes the current database and opens the file again.</summary>
    public LocalDatabase Reopen()
    {
        Database.Dispose();
        Database = Open();
        return Database;
    }

    public SqliteTaskQueue NewQueue(LocalDatabase? database = null, SqliteTaskQueueOptions? options = null) =>
        new(database ?? Database, Clock, options);

    public void Dispose()
    {
        foreach (var database in _opened)
        {
            database.Dispose();
        }

        if (System.IO.Directory.Exists(Directory))
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }
}
