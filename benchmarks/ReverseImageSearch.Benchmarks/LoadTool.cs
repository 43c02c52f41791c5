using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// Loopback load tool for the queryIndex callable. Optionally starts the emulator itself (--spawn EXE with
/// --spawn-args), times process start to the first answered request (cold start), then runs each
/// --clients level for at most --requests calls or --seconds, and reports latency percentiles, throughput
/// and the peak resident memory of the spawned process. Refuses any address but loopback; stops by itself.
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

        var image = await File.ReadAllBytesAsync(cli.Require("image"));
        var body = JsonSerializer.Serialize(new { data = new { query = new[] { Convert.ToBase64String(image) }, neighbours = cli.Int("neighbours", 10) } });
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
                    if (await TryCallAsync(http, url, body))
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
                await TryCallAsync(http, url, body);
            }

            var phases = new List<object>();
            foreach (var clients in levels)
            {
                // Warm-up, not counted: a second of calls (at least 5), so tiered compilation has settled.
                var warmUp = Stopwatch.StartNew();
                for (var w = 0; w < 5 || warmUp.Elapsed.TotalSeconds < cli.Double("warmup", 1); w++)
                {
                    await TryCallAsync(http, url, body);
                }

                phases.Add(await RunPhaseAsync(http, url, body, clients, maxRequests, maxSeconds));
            }

            long? peakRss = spawned is null ? null : ProcessMemory.Read("VmHWM", spawned.Id);
            long? rss = spawned is null ? null : ProcessMemory.Read("VmRSS", spawned.Id);
            cli.Emit(new
            {
                url = url.ToString(),
                imageBytes = image.Length,
                coldStartMs = coldStartMs is null ? (double?)null : Math.Round(coldStartMs.Value, 1),
                firstAnswerMs = firstAnswerMs is null ? (double?)null : Math.Round(firstAnswerMs.Value, 1),
                serverPeakRssMiB = peakRss is null ? (double?)null : ProcessMemory.Mib(peakRss.Value),
                serverRssMiB = rss is null ? (double?)null : ProcessMemory.Mib(rss.Value),
                phases,
            });
            return 0;
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

    private static async Task<bool> TryCallAsync(HttpClient http, Uri url, string body)
    {
        try
        {
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            using var response = await http.PostAsync(url, content);
            var text = await response.Content.ReadAsStringAsync();
            return response.IsSuccessStatusCode && text.Contains("nearestNeighbors", StringComparison.Ordinal);
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    private static async Task<object> RunPhaseAsync(HttpClient http, Uri url, string body, int clients, int maxRequests, double maxSeconds)
    {
        var latencies = new List<double>();
        var failures = 0;
        var issued = 0;
        var clock = Stopwatch.StartNew();
        var gate = new object();
        async Task Client()
        {
            while (clock.Elapsed.TotalSeconds < maxSeconds && Interlocked.Increment(ref issued) <= maxRequests)
            {
                var start = Stopwatch.GetTimestamp();
                var ok = await TryCallAsync(http, url, body);
                var ms = Timing.Ms(Stopwatch.GetTimestamp() - start);
                lock (gate)
                {
                    if (ok)
                    {
                        latencies.Add(ms);
                    }
                    else
                    {
                        failures++;
                    }
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(Client)));
        var elapsed = clock.Elapsed.TotalSeconds;
        latencies.Sort();
        return new
        {
            clients,
            requests = latencies.Count,
            failures,
            seconds = Math.Round(elapsed, 2),
            throughputPerSecond = Math.Round(latencies.Count / elapsed, 1),
            p50Ms = Math.Round(Timing.Percentile(latencies, 50), 2),
            p90Ms = Math.Round(Timing.Percentile(latencies, 90), 2),
            p99Ms = Math.Round(Timing.Percentile(latencies, 99), 2),
            maxMs = latencies.Count > 0 ? Math.Round(latencies[^1], 2) : double.NaN,
        };
    }
}
