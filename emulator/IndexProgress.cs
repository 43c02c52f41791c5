using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Local.Tasks;
using ReverseImageSearch.Local.VectorIndex;
using Spectre.Console;

namespace ReverseImageSearch.Emulator;

/// <summary>Follows a local backfill to a deployed index, drawing a progress bar; says why when it cannot get there.</summary>
internal static class IndexProgress
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);

    /// <summary>Null once the index is deployed and every pending task ran; otherwise the reason it is not.</summary>
    public static async Task<string?> RunAsync(IServiceProvider services, ExtensionOptions options, string imagesFolder, CancellationToken cancellationToken)
    {
        var state = services.GetRequiredService<CoordinationState>();
        var queue = services.GetRequiredService<SqliteTaskQueue>();
        var vectorIndex = services.GetRequiredService<LocalVectorIndexService>();
        string? outcome = null;
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async progress =>
            {
                var backfill = progress.AddTask("Embedding images", maxValue: 1);
                var index = progress.AddTask("Building and deploying the index", maxValue: 3);
                var idleSince = (DateTimeOffset?)null;
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var tasks = await state.GetTasksAsync(cancellationToken);
                    var metadata = await state.GetMetadataAsync(cancellationToken);
                    var stats = await queue.GetStatsAsync(cancellationToken);
                    var outstanding = stats.Outstanding;
                    var dead = stats.Dead;

                    if (tasks?.GetInt64("totalLength") is > 0 and var total)
                    {
                        backfill.MaxValue = total;
                        backfill.Value = tasks.GetInt64("processedLength") ?? 0;
                    }

                    var status = metadata?.GetString("status");
                    index.Value = status switch
                    {
                        IndexStatus.Building => 1,
                        IndexStatus.Deploying => 2,
                        IndexStatus.Deployed => 3,
                        _ => 0,
                    };

                    if (status == IndexStatus.Deployed && outstanding == 0)
                    {
                        backfill.Value = backfill.MaxValue;
                        return;
                    }

                    if (metadata?["error"] is IReadOnlyDictionary<string, object?> error)
                    {
                        outcome = $"{error.GetValueOrDefault("function")}: {error.GetValueOrDefault("message")}";
                        return;
                    }

                    if (dead > 0)
                    {
                        var failed = await queue.GetDeadTasksAsync(cancellationToken: cancellationToken);
                        outcome = "Tasks failed for good: " + string.Join("; ", failed.Take(3).Select(t => $"{t.Queue}: {t.LastError}"));
                        return;
                    }

                    // Nothing left to run and still no index: say why instead of waiting forever.
                    // A build or deployment resumed after a restart runs in the index service, not as a task.
                    idleSince = outstanding == 0 && !vectorIndex.HasPendingOperations ? idleSince ?? DateTimeOffset.UtcNow : null;
                    if (idleSince is { } since && DateTimeOffset.UtcNow - since > TimeSpan.FromSeconds(1))
                    {
                        outcome = tasks is null
                            ? options.DoBackfill
                                ? $"No images found in {imagesFolder} (jpg, jpeg, png, gif, bmp, webp)."
                                : "DO_BACKFILL is false: the index is created from the first image added while serving."
                            : $"The backfill finished ({tasks.GetString("status")}) but the index was not deployed (status {status ?? "none"}).";
                        return;
                    }

                    await Task.Delay(Poll, cancellationToken);
                }
            });

        if (outcome is null)
        {
            AnsiConsole.MarkupLine("[green]Index deployed.[/]");
        }

        return outcome;
    }
}
