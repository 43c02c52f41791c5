using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Core.Coordination;

/// <summary>Backfill statuses of the tasks document and of each chunk's enqueue document (the original's values).</summary>
public static class BackfillStatus
{
    public const string Pending = "PENDING";
    public const string Processing = "PROCESSING";
    public const string Done = "DONE";

    /// <summary>A chunk that exhausted its attempts: counted as processed so the others can finish; its error is in the document.</summary>
    public const string Failed = "FAILED";
}

/// <summary>Index statuses of the metadata document (the original's values).</summary>
public static class IndexStatus
{
    public const string Building = "INDEX_BUILDING";
    public const string Deploying = "INDEX_DEPLOYING";
    public const string Deployed = "INDEX_DEPLOYED";
}

/// <summary>
/// Paths of the coordination documents, exactly the original's:
/// <c>_ext-{instance}/tasks</c>, <c>_ext-{instance}/tasks/enqueues/{taskId}</c>, <c>_ext-{instance}/metadata</c>;
/// plus one record per indexed image under <c>_ext-{instance}/metadata/datapoints/{escaped object name}</c>.
/// </summary>
public sealed class CoordinationDocuments(ExtensionOptions options)
{
    public string Collection => $"_ext-{options.InstanceId}";

    public string Tasks => $"{Collection}/tasks";

    public string Metadata => $"{Collection}/metadata";

    public string Enqueue(string taskId) => $"{Enqueues}/{taskId}";

    public string Datapoint(string objectName) => $"{Datapoints}/{EscapeDocumentId(objectName)}";

    /// <summary>The collection of per-image records (indexed, or skipped with the reason).</summary>
    public string Datapoints => $"{Metadata}/datapoints";

    /// <summary>The collection of backfill chunk documents.</summary>
    public string Enqueues => $"{Tasks}/enqueues";

    /// <summary>The original's chunk task id: ext-{instance}-task{n}, n from 1.</summary>
    public string BackfillTaskId(int chunkNumber) => $"ext-{options.InstanceId}-task{chunkNumber}";

    /// <summary>
    /// A document id that stands for an object name: '/' is not allowed in ids, so the name is
    /// percent-encoded; a leading "__" (reserved) is encoded too.
    /// </summary>
    public static string EscapeDocumentId(string objectName)
    {
        var escaped = Uri.EscapeDataString(objectName);
        if (escaped.StartsWith("__", StringComparison.Ordinal))
        {
            escaped = "%5F" + escaped[1..];
        }

        if (escaped is "." or "..")
        {
            escaped = escaped.Replace(".", "%2E", StringComparison.Ordinal);
        }

        return escaped;
    }
}
