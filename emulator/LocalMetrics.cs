using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core;
using ReverseImageSearch.Local.Tasks;

namespace ReverseImageSearch.Emulator;

/// <summary>
/// The gauges only the local stack can read cheaply, read when metrics are collected: the task queue's depth and
/// the index's size. On Google Cloud, Cloud Tasks and the index report these in Cloud Monitoring themselves.
/// </summary>
internal static class LocalMetrics
{
    public static void Observe(IServiceProvider services)
    {
        // A meter of the host's factory, disposed with it; exported with Core's, under the same name.
        var meter = services.GetRequiredService<IMeterFactory>().Create(Telemetry.Name);
        var queue = services.GetRequiredService<SqliteTaskQueue>();
        meter.CreateObservableGauge(
            "ris.tasks.queue_depth",
            () => queue.GetStatsAsync(CancellationToken.None).GetAwaiter().GetResult().Outstanding,
            "{task}",
            "Tasks waiting or running in the local task queue (every queue).");
        meter.CreateObservableGauge(
            "ris.index.images",
            () => (long)IndexReport.ReadAsync(services, CancellationToken.None).GetAwaiter().GetResult().Indexed,
            "{image}",
            "Images the index holds.");
    }
}
