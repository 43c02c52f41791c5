namespace ReverseImageSearch.Local.Database;

/// <summary>The tables of the local database; every statement is safe to run on an existing file.</summary>
internal static class Schema
{
    // Times are UTC ticks: integers compare and index exactly, and keep DateTimeOffset's precision.
    public const string Sql = """
        CREATE TABLE IF NOT EXISTS documents (
            path TEXT NOT NULL PRIMARY KEY,
            fields TEXT NOT NULL,
            create_time INTEGER NOT NULL,
            update_time INTEGER NOT NULL
        );

        -- The last commit time the document store gave out, so update times keep increasing across restarts
        -- and clock steps back.
        CREATE TABLE IF NOT EXISTS document_clock (
            id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
            last_commit_time INTEGER NOT NULL
        );

        CREATE TABLE IF NOT EXISTS tasks (
            id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
            queue TEXT NOT NULL,
            name TEXT NOT NULL,
            payload TEXT NOT NULL,
            dedup_id TEXT NULL,
            enqueue_time INTEGER NOT NULL,
            schedule_time INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'leased', 'dead')),
            lease_until INTEGER NULL,
            lease_token TEXT NULL,
            lease_owner TEXT NULL
        );
        CREATE INDEX IF NOT EXISTS tasks_by_queue_state_time ON tasks (queue, state, schedule_time);
        CREATE UNIQUE INDEX IF NOT EXISTS tasks_by_dedup_id ON tasks (queue, dedup_id) WHERE dedup_id IS NOT NULL;

        -- De-duplication ids outlive their tasks (as Cloud Tasks remembers task names after they ran).
        CREATE TABLE IF NOT EXISTS task_dedup_ids (
            queue TEXT NOT NULL,
            dedup_id TEXT NOT NULL,
            remember_until INTEGER NOT NULL,
            PRIMARY KEY (queue, dedup_id)
        );
        CREATE INDEX IF NOT EXISTS task_dedup_ids_by_expiry ON task_dedup_ids (remember_until);

        """;

    /// <summary>Columns added after a file may have been created without them: (table, column, definition).</summary>
    public static readonly (string Table, string Column, string Definition)[] AddedColumns =
    [
        // The process holding a lease (LeaseOwner), so a later process can take back the leases of a dead one.
        ("tasks", "lease_owner", "TEXT NULL"),
    ];
}
