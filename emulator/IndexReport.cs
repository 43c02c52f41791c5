using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Local.Documents;
using ReverseImageSearch.Local.Tasks;
using Spectre.Console;

namespace ReverseImageSearch.Emulator;

/// <summary>One image that was not indexed, and why.</summary>
public sealed record SkippedImage(string Name, string Reason);

/// <summary>
/// What became of the images, read from the coordination documents and the task queue: indexed, skipped
/// with the reason (the per-image records), failed (backfill chunks that ran out of attempts and tasks
/// that died). The index command ends with it; the page and /api/status show it.
/// </summary>
public sealed record IndexReport(int Indexed, IReadOnlyList<SkippedImage> Skipped, IReadOnlyList<string> Failures)
{
    /// <summary>Skipped images the index command prints; the rest are in the file it names.</summary>
    public const int SkippedShown = 20;

    public static async Task<IndexReport> ReadAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var documents = services.GetRequiredService<SqliteDocumentStore>();
        var paths = services.GetRequiredService<CoordinationState>().Paths;
        var queue = services.GetRequiredService<SqliteTaskQueue>();

        var records = (await documents.ListAsync(paths.Datapoints, cancellationToken)).Select(CoordinationState.ReadDatapointRecord).ToArray();
        var failures = new List<string>();
        foreach (var chunk in await documents.ListAsync(paths.Enqueues, cancellationToken))
        {
            if (CoordinationState.ReadBackfillChunk(chunk) is { Status: BackfillStatus.Failed } failed)
            {
                failures.Add($"backfill chunk {failed.TaskId}: {FirstLine(failed.Error)}");
            }
        }

        if ((await queue.GetStatsAsync(cancellationToken)).Dead > 0)
        {
            failures.AddRange((await queue.GetDeadTasksAsync(cancellationToken: cancellationToken)).Select(t => $"task of {t.Queue}: {FirstLine(t.LastError)}"));
        }

        return new IndexReport(
            records.Count(r => r.Status == DatapointStatus.Indexed),
            records.Where(r => r.Status == DatapointStatus.Skipped).Select(r => new SkippedImage(r.ObjectName, r.Reason ?? "no reason recorded")).ToArray(),
            failures);
    }

    public string Summary => string.Create(CultureInfo.InvariantCulture, $"{Indexed} indexed, {Skipped.Count} skipped, {Failures.Count} failed");

    /// <summary>
    /// The index command's closing lines: the counts, the first skipped images with their reasons and
    /// where the whole list is (a TSV file in the data folder), and every failure.
    /// </summary>
    public void Print(string dataFolder)
    {
        AnsiConsole.MarkupLineInterpolated($"Images: {Summary}.");
        if (Skipped.Count > 0)
        {
            var list = Path.Combine(dataFolder, "skipped.tsv");
            File.WriteAllLines(list, Skipped.Select(s => $"{s.Name}\t{s.Reason}").Prepend("image\treason"));
            AnsiConsole.MarkupLineInterpolated($"Skipped{(Skipped.Count > SkippedShown ? $" (the first {SkippedShown} of {Skipped.Count})" : "")}:");
            foreach (var skipped in Skipped.Take(SkippedShown))
            {
                AnsiConsole.MarkupLineInterpolated($"  {skipped.Name}: {skipped.Reason}");
            }

            AnsiConsole.MarkupLineInterpolated($"Every skipped image with its reason: {list}");
        }

        foreach (var failure in Failures)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]Failed:[/] {failure}");
        }
    }

    private static string FirstLine(string? text) => text is null ? "no error recorded" : text.Split('\n', 2)[0].Trim();
}
