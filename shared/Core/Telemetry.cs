using System.Diagnostics;
using System.Diagnostics.Metrics;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Core;

/// <summary>
/// The product's metrics and traces, on the BCL's Meter and ActivitySource (no OpenTelemetry types here): the hosts
/// export them (shared/Gcp/Hosting FunctionTelemetry). Every name, unit and attribute is listed in the README.
/// </summary>
public static class Telemetry
{
    public const string Name = "ReverseImageSearch";

    /// <summary>Attribute of <see cref="ImagesSkipped"/>: why (<see cref="ImageRejections.Kind"/>).</summary>
    public const string ReasonAttribute = "reason";

    /// <summary>Attribute of <see cref="TaskRetries"/>: the queue (locally) or the function (deployed) the task was for.</summary>
    public const string QueueAttribute = "queue";

    public static readonly ActivitySource Source = new(Name);

    public static readonly Meter Meter = new(Name);

    public static readonly Histogram<double> EmbeddingDuration = Meter.CreateHistogram<double>(
        "ris.embedding.duration", "s", "Time to decode and embed one image (a batch's time shared among its images).");

    public static readonly Counter<long> ImagesIndexed = Meter.CreateCounter<long>(
        "ris.images.indexed", "{image}", "Images embedded and written to the index (backfill and uploads).");

    public static readonly Counter<long> ImagesSkipped = Meter.CreateCounter<long>(
        "ris.images.skipped", "{image}", "Images that could not be indexed, by reason.");

    public static readonly Counter<long> TaskRetries = Meter.CreateCounter<long>(
        "ris.tasks.retries", "{delivery}", "Task deliveries that were a retry of an earlier failed one, by queue.");

    public static readonly Histogram<double> QueryDuration = Meter.CreateHistogram<double>(
        "ris.query.duration", "s", "Time queryIndex took to answer a call (answers and errors alike).");

    /// <summary>
    /// Per query of an exact search of the local index (InProcessVectorIndex, VectorSearchMode.Exact): the float32
    /// rows it scored, the int8 filter having left out the rest; against the index's size it shows how much of the
    /// scan the filter saved.
    /// </summary>
    public static readonly Histogram<long> IndexRowsScored = Meter.CreateHistogram<long>(
        "ris.index.rows_scored", "{row}", "Float32 rows an exact search of the local index scored for one query.");

    /// <summary>Times one query until disposed, in <see cref="QueryDuration"/> and a "query index" span.</summary>
    public static QueryTiming TimeQuery() => new(Source.StartActivity("query index"), Stopwatch.GetTimestamp());

    /// <summary>Counts a task delivery that retries an earlier one (its retry count is above zero).</summary>
    public static void CountDelivery(string queue, int retryCount)
    {
        if (retryCount > 0)
        {
            TaskRetries.Add(1, new KeyValuePair<string, object?>(QueueAttribute, queue));
        }
    }

    /// <summary>Counts the outcome of one image: indexed, or skipped with the kind of its reason.</summary>
    public static void CountImage(DatapointRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.Status == DatapointStatus.Indexed)
        {
            ImagesIndexed.Add(1);
        }
        else if (record.Status == DatapointStatus.Skipped)
        {
            ImagesSkipped.Add(1, new KeyValuePair<string, object?>(ReasonAttribute, ImageRejections.Kind(record.Reason)));
        }
    }
}

/// <summary>One query being timed (<see cref="Telemetry.TimeQuery"/>).</summary>
public readonly struct QueryTiming(Activity? activity, long started) : IDisposable
{
    public void Dispose()
    {
        Telemetry.QueryDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
        activity?.Dispose();
    }
}
