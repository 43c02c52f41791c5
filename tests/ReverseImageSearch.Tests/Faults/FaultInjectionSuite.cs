using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Data.Sqlite;

namespace ReverseImageSearch.Tests.Faults;

/// <summary>
/// Seeded fault-injection runs of the local stack: a real <c>index</c> process backfills a folder and is killed
/// with SIGKILL at chosen points (a chunk leased, a datapoints file written, a progress increment, the index
/// building or deploying, or a random moment) while uploads, overwrites, renames and deletes race it; between
/// runs, tasks and events it already saw are put back in the queue (delivered twice, out of order). The last
/// start must end INDEX_DEPLOYED within a bound, with every image indexed once, from its current content,
/// processedLength = totalLength and no vector for a deleted image.
/// Short mode (the default, part of the test run): 2 runs over 120 images. Full mode: bash tests/faults.sh
/// (RIS_FAULT_RUNS runs over RIS_FAULT_IMAGES images; 24 over 1000 by default). Both race file changes against the
/// backfill; RIS_FAULT_RACE=0 turns that off.
/// </summary>
[Parallelizable(ParallelScope.None)]
public sealed class FaultInjectionSuite
{
    private static readonly string[] KillPoints = ["chunk-leased", "datapoints-file", "progress-counted", "index-building", "index-deploying", "random-moment"];

    private static int Runs => EnvironmentNumber("RIS_FAULT_RUNS", 2);

    private static int ImageCount => EnvironmentNumber("RIS_FAULT_IMAGES", 120);

    private static int FirstSeed => EnvironmentNumber("RIS_FAULT_SEED", 1);

    // Racing file changes are on in both modes; RIS_FAULT_RACE=0 leaves only kills and duplicate deliveries (to tell
    // which of the two a failure needs).
    private static bool RaceFileChanges => Environment.GetEnvironmentVariable("RIS_FAULT_RACE") != "0";

    public static IEnumerable<int> Seeds() => Enumerable.Range(FirstSeed, Runs);

    [TestCaseSource(nameof(Seeds))]
    public async Task KilledRestartedAndDuplicatedTheBackfillEndsDeployedWithEveryImageOnce(int seed)
    {
        var random = new Random(seed);
        // A failed run keeps its folders for a look at what was left (tasks table, documents, logs): any failure ends
        // the test before its last line lets them go.
        using var bed = new FaultBed { Keep = true };
        bed.WriteImages(ImageCount);
        var seen = new Dictionary<(string Queue, string Name, string Payload), bool>();
        var log = new List<string>();
        var nextImage = ImageCount;
        var kills = 0;
        var duplicates = 0;
        var mutations = 0;

        var plannedKills = random.Next(1, 4);
        for (var attempt = 0; attempt < plannedKills; attempt++)
        {
            var point = KillPoints[random.Next(KillPoints.Length)];
            var moment = TimeSpan.FromSeconds(0.3 + (random.NextDouble() * Math.Max(2, ImageCount / 40.0)));
            using var process = bed.StartIndex();
            var started = Stopwatch.StartNew();
            using var stopMutating = new CancellationTokenSource();
            var mutator = random.Next(2) == 0 || !RaceFileChanges
                ? Task.CompletedTask
                : MutateAsync(bed, new Random(random.Next()), () => nextImage++, count => mutations += count, stopMutating.Token);
            var reached = false;
            while (!process.HasExited && started.Elapsed < PointBound)
            {
                Observe(bed, seen);
                if (Reached(bed, point, started.Elapsed, moment))
                {
                    reached = true;
                    break;
                }

                await Task.Delay(10);
            }

            await stopMutating.CancelAsync();
            await mutator;
            if (!process.HasExited && !reached)
            {
                point = $"{point} (not reached within {PointBound.TotalSeconds:0} s)"; // Killed all the same.
            }
            else if (process.HasExited)
            {
                log.Add($"run {attempt + 1}: ended before {point} ({started.Elapsed.TotalSeconds:F1} s, exit {(process.HasExited ? process.ExitCode : -1)})");
                continue;
            }

            process.Kill();
            kills++;
            var injected = InjectDuplicates(bed, seen, random);
            duplicates += injected;
            log.Add($"run {attempt + 1}: killed at {point} after {started.Elapsed.TotalSeconds:F1} s; {injected} task(s) delivered again");
        }

        var recovery = Stopwatch.StartNew();
        var final = await bed.RunIndexAsync(FinalBound);
        var recoverySeconds = recovery.Elapsed.TotalSeconds;
        var summary = $"seed {seed}: {ImageCount} images, {kills} kill(s), {duplicates} duplicate deliveries, {mutations} racing change(s), last start took {recoverySeconds:F1} s; " + string.Join("; ", log);
        TestContext.Progress.WriteLine(summary + $"; folders at {bed.Root} (kept if the run fails)");
        Assert.That(final, Is.Not.Null, () => $"the last start did not finish within {FinalBound}: {summary}");
        using var finalProcess = final!.Value.Process;
        Assert.That(finalProcess.ExitCode, Is.Zero, () => summary + "\n" + finalProcess.Output);

        var outcome = await bed.ReadOutcomeAsync();
        var images = bed.ImageNames();
        Assert.Multiple(() =>
        {
            Assert.That(outcome.IndexStatus, Is.EqualTo("INDEX_DEPLOYED"), summary);
            Assert.That(outcome.ProcessedLength, Is.EqualTo(outcome.TotalLength), summary);
            Assert.That(outcome.IndexedIds, Is.Unique, summary);
            Assert.That(outcome.IndexedIds.Order(StringComparer.Ordinal), Is.EqualTo(images), "every image indexed, no vector for a deleted one: " + summary);
            foreach (var name in images)
            {
                var md5 = Convert.ToBase64String(MD5.HashData(File.ReadAllBytes(Path.Combine(bed.Images, name))));
                Assert.That(outcome.IndexedMd5.GetValueOrDefault(name), Is.EqualTo(md5), $"{name} is indexed from its current content: {summary}");
            }
        });
        bed.Keep = false;
    }

    private static TimeSpan PointBound => TimeSpan.FromSeconds(Math.Max(60, ImageCount / 4.0));

    private static TimeSpan FinalBound => TimeSpan.FromSeconds(Math.Max(180, ImageCount / 3.0));

    private static bool Reached(FaultBed bed, string point, TimeSpan elapsed, TimeSpan moment) => point switch
    {
        "chunk-leased" => bed.LeasedTasks("backfillTask") > 0,
        "datapoints-file" => Directory.Exists(Path.Combine(bed.Data, "buckets"))
            && Directory.EnumerateFiles(Path.Combine(bed.Data, "buckets"), "*.json", SearchOption.AllDirectories).Any(path => path.Contains("datapoints", StringComparison.Ordinal)),
        "progress-counted" => bed.Scalar("SELECT COUNT(*) FROM documents WHERE path LIKE '%/tasks/enqueues/%' AND fields LIKE '%\"DONE\"%'") > 0,
        "index-building" => bed.Scalar("SELECT COUNT(*) FROM documents WHERE path LIKE '%/metadata' AND fields LIKE '%INDEX_BUILDING%'") > 0,
        "index-deploying" => bed.Scalar("SELECT COUNT(*) FROM documents WHERE path LIKE '%/metadata' AND fields LIKE '%INDEX_DEPLOYING%'") > 0,
        _ => elapsed >= moment,
    };

    /// <summary>Remembers every task and event the queue held, to deliver some of them again later.</summary>
    private static void Observe(FaultBed bed, Dictionary<(string Queue, string Name, string Payload), bool> seen)
    {
        foreach (var row in bed.Rows("SELECT queue, name, payload FROM tasks WHERE state <> 'dead'"))
        {
            seen.TryAdd((row[0], row[1], row[2]), true);
        }
    }

    /// <summary>Puts tasks and events seen so far back in the queue, due in a shuffled order: at-least-once delivery at its worst.</summary>
    private static int InjectDuplicates(FaultBed bed, Dictionary<(string Queue, string Name, string Payload), bool> seen, Random random)
    {
        var picks = seen.Keys.OrderBy(_ => random.Next()).Take(random.Next(0, 8)).ToList();
        if (picks.Count == 0)
        {
            return 0;
        }

        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = bed.StateFile, Pooling = false }.ToString());
        connection.Open();
        var now = DateTimeOffset.UtcNow.UtcTicks;
        foreach (var (queue, name, payload) in picks)
        {
            using var insert = connection.CreateCommand();
            insert.CommandText = """
                INSERT INTO tasks (queue, name, payload, dedup_id, enqueue_time, schedule_time, state)
                VALUES ($queue, $name, $payload, NULL, $now, $due, 'pending')
                """;
            insert.Parameters.AddWithValue("$queue", queue);
            insert.Parameters.AddWithValue("$name", name);
            insert.Parameters.AddWithValue("$payload", payload);
            insert.Parameters.AddWithValue("$now", now);
            insert.Parameters.AddWithValue("$due", now + TimeSpan.FromMilliseconds(random.Next(0, 3000)).Ticks);
            insert.ExecuteNonQuery();
        }

        return picks.Count;
    }

    /// <summary>Uploads, overwrites, renames and deletes images while the backfill runs.</summary>
    private static async Task MutateAsync(FaultBed bed, Random random, Func<int> newImageNumber, Action<int> counted, CancellationToken stop)
    {
        var done = 0;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(random.Next(50, 400), stop);
                var names = bed.ImageNames();
                var victim = names.Count > 0 ? names[random.Next(names.Count)] : null;
                switch (random.Next(4))
                {
                    case 0:
                        var number = newImageNumber();
                        bed.WriteImage($"img-{number:D3}.jpg", variant: number);
                        break;
                    case 1 when victim is not null:
                        bed.WriteImage(victim, variant: random.Next(10_000, 20_000));
                        break;
                    case 2 when victim is not null:
                        File.Move(Path.Combine(bed.Images, victim), Path.Combine(bed.Images, "renamed-" + newImageNumber().ToString("D3", CultureInfo.InvariantCulture) + ".jpg"));
                        break;
                    case 3 when victim is not null:
                        File.Delete(Path.Combine(bed.Images, victim));
                        break;
                    default:
                        continue;
                }

                done++;
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            counted(done);
        }
    }

    private static int EnvironmentNumber(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), CultureInfo.InvariantCulture, out var value) && value > 0 ? value : fallback;
}
