using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// Loopback load tool for the queryIndex callable. Optionally starts the emulator itself (--spawn EXE with
/// --spawn-args), times process start to the first answered request (cold start), then runs each
/// --clients level for at most --requests calls or --seconds, and reports errors, latency percentiles,
/// throughput and the resident memory of the spawned process at the start and end of each level and at its peak.
/// --image takes several comma-separated files, sent in turn (a mix of inputs). A call is an error unless it is
/// answered as --expect says: ok (neighbours found, the default) or rejected (an invalid-argument answer, for
/// inputs that must be refused). --fail-on-errors exits 1 when any call was an error.
/// Refuses any address but loopback; stops by itself.
/// </summary>
internal static class LoadTool
{
    public static async Task<int> RunAsync(Cli cli)
    {
        var url = new Uri(cli.Get("url", "http://127.0.0.1:5001/demo-reverse-image-search/us-central1/ext-storage-reverse-image-search-queryIndex"));
        if (!IPAddress.TryParse(url.Host, out var address) || !IPAddress.IsLoopback(address))
        {
            Console.Error.WriteLine($"refusing {url.Host}: the load tool only targets loopback addresses (127.0.0.0/8, ::1)");
            return 2;
        }

        var images = await Task.WhenAll(cli.Require("image").Split(',').Select(path => File.ReadAllBytesAsync(path)));
        var bodies = images.Select(image => JsonSerializer.Serialize(
            new { data = new { query = new[] { Convert.ToBase64String(image) }, neighbours = cli.Int("neighbours", 10) } })).ToArray();
        var body = bodies[0];
        var expected = cli.Get("expect", "ok") == "rejected" ? Outcome.Rejected : Outcome.Ok;
        var levels = cli.Get("clients", "1,8").Split(',').Select(int.Parse).ToArray();
        var maxRequests = Math.Clamp(cli.Int("requests", 200), 1, 100_000);
        var maxSeconds = Math.Clamp(cli.Double("seconds", 10), 0.1, 600);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64, UseProxy = false }) { Timeout = TimeSpan.FromSeconds(30) };

        Process? spawned = null;
        double? coldStartMs = null;
        double? firstAnswerMs = null;
        try
        {
            if (cli.Get("spawn", "") is { Length: > 0 } exe)
            {
                var info = new ProcessStartInfo(exe, cli.Get("spawn-args", "")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                var started = Stopwatch.StartNew();
                spawned = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {exe}");
                spawned.OutputDataReceived += (_, _) => { };
                spawned.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("[server] " + e.Data); };
                spawned.BeginOutputReadLine();
                spawned.BeginErrorReadLine();
                var deadline = TimeSpan.FromSeconds(cli.Double("start-timeout", 60));
                while (true)
                {
                    if (spawned.HasExited)
                    {
                        Console.Error.WriteLine($"the server exited with {spawned.ExitCode} before answering");
                        return 1;
                    }

                    if (started.Elapsed > deadline)
                    {
                        Console.Error.WriteLine("the server did not answer in time");
                        return 1;
                    }

                    var attempt = Stopwatch.StartNew();
                    if (await CallAsync(http, url, body) == expected)
                    {
                        coldStartMs = started.Elapsed.TotalMilliseconds;
                        firstAnswerMs = attempt.Elapsed.TotalMilliseconds;
                        break;
                    }

                    await Task.Delay(10);
                }
            }
            else
            {
                await CallAsync(http, url, body);
            }

            var phases = new List<Phase>();
            foreach (var clients in levels)
            {
                // Warm-up, not counted: a second of calls (at least 5), so tiered compilation has settled.
                var warmUp = Stopwatch.StartNew();
                for (var w = 0; w < 5 || warmUp.Elapsed.TotalSeconds < cli.Double("warmup", 1); w++)
                {
                    await CallAsync(http, url, bodies[w % bodies.Length]);
                }

                phases.Add(await RunPhaseAsync(http, url, bodies, expected, clients, maxRequests, maxSeconds, spawned?.Id));
            }

            long? peakRss = spawned is null ? null : ProcessMemory.Read("VmHWM", spawned.Id);
            long? rss = spawned is null ? null : ProcessMemory.Read("VmRSS", spawned.Id);
            cli.Emit(new
            {
                url = url.ToString(),
                imageBytes = images.Select(image => image.Length).ToArray(),
                expect = expected.ToString().ToLowerInvariant(),
                coldStartMs = coldStartMs is null ? (double?)null : Math.Round(coldStartMs.Value, 1),
                firstAnswerMs = firstAnswerMs is null ? (double?)null : Math.Round(firstAnswerMs.Value, 1),
                serverPeakRssMiB = peakRss is null ? (double?)null : ProcessMemory.Mib(peakRss.Value),
                serverRssMiB = rss is null ? (double?)null : ProcessMemory.Mib(rss.Value),
                phases,
            });
            return cli.Flag("fail-on-errors") && phases.Any(phase => phase.Errors > 0) ? 1 : 0;
        }
        finally
        {
            if (spawned is { HasExited: false })
            {
                spawned.Kill(entireProcessTree: true);
                await spawned.WaitForExitAsync();
            }

            spawned?.Dispose();
        }
    }

    /// <summary>How a call was answered: neighbours, an invalid-argument refusal, or anything else (an error).</summary>
    private static async Task<Outcome> CallAsync(HttpClient http, Uri url, string body)
    {
        try
        {
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            using var response = await http.PostAsync(url, content);
            var text = await response.Content.ReadAsStringAsync();
            return response.IsSuccessStatusCode && text.Contains("nearestNeighbors", StringComparison.Ordinal) ? Outcome.Ok
                : response.StatusCode == HttpStatusCode.BadRequest && text.Contains("INVALID_ARGUMENT", StringComparison.Ordinal) ? Outcome.Rejected
                : Outcome.Error;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return Outcome.Error;
        }
    }

    private static async Task<Phase> RunPhaseAsync(
        HttpClient http, Uri url, string[] bodies, Outcome expected, int clients, int maxRequests, double maxSeconds, int? serverPid)
    {
        var latencies = new List<double>();
        var errors = 0;
        var issued = 0;
        var rssStart = serverPid is { } startPid ? ProcessMemory.Read("VmRSS", startPid) : (long?)null;
        var clock = Stopwatch.StartNew();
        var gate = new object();
        async Task Client()
        {
            int call;
            while (clock.Elapsed.TotalSeconds < maxSeconds && (call = Interlocked.Increment(ref issued)) <= maxRequests)
            {
                var start = Stopwatch.GetTimestamp();
                var answered = await CallAsync(http, url, bodies[call % bodies.Length]) == expected;
                var ms = Timing.Ms(Stopwatch.GetTimestamp() - start);
                lock (gate)
                {
                    if (answered)
                    {
                        latencies.Add(ms);
                    }
                    else
                    {
                        errors++;
                    }
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(Client)));
        var elapsed = clock.Elapsed.TotalSeconds;
        latencies.Sort();
        return new Phase(
            clients,
            latencies.Count,
            errors,
            Math.Round(elapsed, 2),
            Math.Round(latencies.Count / elapsed, 1),
            Math.Round(Timing.Percentile(latencies, 50), 2),
            Math.Round(Timing.Percentile(latencies, 90), 2),
            Math.Round(Timing.Percentile(latencies, 99), 2),
            latencies.Count > 0 ? Math.Round(latencies[^1], 2) : double.NaN,
            rssStart is null ? null : ProcessMemory.Mib(rssStart.Value),
            serverPid is { } endPid ? ProcessMemory.Mib(ProcessMemory.Read("VmRSS", endPid)) : null,
            serverPid is { } peakPid ? ProcessMemory.Mib(ProcessMemory.Read("VmHWM", peakPid)) : null);
    }

    private enum Outcome
    {
        Ok,
        Rejected,
        Error,
    }

    /// <summary>One --clients level; RSS of the spawned server (MiB) when the level started and ended, and its peak so far.</summary>
    private sealed record Phase(
        int Clients, int Requests, int Errors, double Seconds, double ThroughputPerSecond, double P50Ms, double P90Ms, double P99Ms, double MaxMs,
        double? RssStartMiB, double? RssEndMiB, double? PeakRssMiB);
}
