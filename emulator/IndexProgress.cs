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
                // INDEX_BACKEND=firestore: nothing is built; images are searchable as they are embedded.
                var index = progress.AddTask(
                    options.IndexNeedsBuild ? "Building and deploying the index" : "Vector index (firestore: no build, searchable now)", maxValue: 3);
                var idleSince = (DateTimeOffset?)null;
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var run = await state.ReadBackfillRunAsync(cancellationToken);
                    var metadata = await state.ReadMetadataAsync(cancellationToken);
                    var stats = await queue.GetStatsAsync(cancellationToken);
                    var outstanding = stats.Outstanding;
                    var dead = stats.Dead;

                    if (run is { TotalLength: > 0 })
                    {
                        backfill.MaxValue = run.TotalLength;
                        backfill.Value = run.ProcessedLength;
                    }

                    var status = metadata?.Status;
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

                    if (metadata?.Error is { } error)
                    {
                        outcome = $"{error.Function}: {error.Message}";
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
                        outcome = run is null
                            ? options.DoBackfill
                                ? $"No images found in {imagesFolder} (jpg, jpeg, png, gif, bmp, webp)."
                                : "DO_BACKFILL is false: the index is created from the first image added while serving."
                            : $"The backfill finished ({CoordinationState.StatusName(run.Status) ?? "none"}) but the index was not deployed (status {CoordinationState.StatusName(status) ?? "none"}).";
                        return;
                    }

                    await Task.Delay(Poll, cancellationToken);
                }
            });

        if (outcome is null)
        {
            AnsiConsole.MarkupLine(options.IndexNeedsBuild
                ? "[green]Index deployed.[/]"
                : "[green]Index deployed.[/] (INDEX_BACKEND=firestore: every image was searchable as soon as it was embedded.)");
        }

        return outcome;
    }
}
