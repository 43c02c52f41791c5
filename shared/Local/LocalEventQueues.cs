namespace ReverseImageSearch.Local;

/// <summary>
/// Locally, events travel through the same durable SQLite task queue as tasks, so one mechanism gives
/// them at-least-once delivery and retries. These are the queue names the local parts publish to;
/// the emulator routes each to its function.
/// </summary>
public static class LocalEventQueues
{
    /// <summary>Payload: a serialized <see cref="Core.Triggers.StorageObjectEvent"/> of kind Finalized.</summary>
    public const string StorageFinalized = "events.storage.finalized";

    /// <summary>Payload: a serialized <see cref="Core.Triggers.StorageObjectEvent"/> of kind Deleted.</summary>
    public const string StorageDeleted = "events.storage.deleted";

    /// <summary>Payload: a document change encoded by the SQLite document store (decode it with the store).</summary>
    public const string DocumentUpdated = "events.firestore.updated";

    /// <summary>Payload: a serialized <see cref="Core.Triggers.AuditLogEvent"/>.</summary>
    public const string AuditLogWritten = "events.audit.written";
}
