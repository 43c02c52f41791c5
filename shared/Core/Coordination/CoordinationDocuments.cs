using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Core.Coordination;

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

    /// <summary>
    /// INDEX_BACKEND=firestore: the collection id of the vector documents, one per indexed image. It names the
    /// instance because a Firestore vector index belongs to a collection id (any parent): two instances must not share one.
    /// </summary>
    public string VectorCollectionId => $"vectors-{options.InstanceId}";

    /// <summary>
    /// INDEX_BACKEND=firestore: <c>_ext-{instance}/metadata/vectors-{instance}</c>; each image's vector document is
    /// <c>{VectorCollection}/{escaped object name}</c> (the id as for the datapoint records), with the object name as a field.
    /// </summary>
    public string VectorCollection => $"{Metadata}/{VectorCollectionId}";

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
