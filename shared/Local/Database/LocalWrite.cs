using Microsoft.Data.Sqlite;

namespace ReverseImageSearch.Local.Database;

/// <summary>One open write transaction of the <see cref="LocalDatabase"/>, handed to the code that fills it.</summary>
internal sealed class LocalWrite(SqliteConnection connection, SqliteTransaction transaction)
{
    private readonly List<Action> _afterCommit = [];
    private bool _committed;

    public SqliteConnection Connection { get; } = connection;

    public SqliteTransaction Transaction { get; } = transaction;

    /// <summary>A command enlisted in this transaction.</summary>
    public SqliteCommand Command(string sql)
    {
        var command = Connection.CreateCommand();
        command.Transaction = Transaction;
        command.CommandText = sql;
        return command;
    }

    /// <summary>Runs <paramref name="callback"/> once the transaction committed (never when it rolled back).</summary>
    public void AfterCommit(Action callback) => _afterCommit.Add(callback);

    internal void MarkCommitted() => _committed = true;

    internal void RunAfterCommit(Action<Exception> onError)
    {
        if (!_committed)
        {
            return;
        }

        foreach (var callback in _afterCommit)
        {
            try
            {
                callback();
            }
            catch (Exception exception) when (exception is not OutOfMemoryException)
            {
                onError(exception);
            }
        }
    }
}
