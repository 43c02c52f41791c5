using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;

using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp;

/// <summary>
/// Google's Firestore emulator (gcloud emulators firestore start), started once for the test run in its own
/// process group (setsid) so that both the gcloud wrapper and the java server it starts can be stopped.
/// </summary>
public static class FirestoreEmulator
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static Process? EmulatorProcess;
    private static string? Unavailable;

    private static readonly HttpClient Forwarder = new();

    public static string? HostPort { get; private set; }

    /// <summary>A contract server's fallback that passes a validated request on to the emulator (as its owner).</summary>
    public static Func<RecordedRequest, Task<Reply>> Forward(string emulatorHost) => async r =>
    {
        var query = string.Join('&', r.Query.Select(q => Uri.EscapeDataString(q.Key) + "=" + Uri.EscapeDataString(q.Value)));
        using var request = new HttpRequestMessage(new HttpMethod(r.HttpMethod), $"http://{emulatorHost}{r.RawPath}{(query.Length > 0 ? "?" + query : "")}");
        if (r.Body.Length > 0)
        {
            request.Content = new ByteArrayContent(r.Body);
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(r.ContentType ?? "application/json");
        }

        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "owner");
        using var response = await Forwarder.SendAsync(request);
        return new Reply((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    };

    /// <summary>
    /// Starts the emulator (once). When gcloud or its emulator is missing the calling test fails, saying so: these
    /// tests are the proof of the Firestore adapters and must not vanish from a run (tests/run.sh installs the emulator).
    /// </summary>
    public static async Task<string> EnsureStartedAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (HostPort is not null)
            {
                return HostPort;
            }

            if (Unavailable is null)
            {
                Unavailable = await TryStartAsync();
            }

            if (HostPort is null)
            {
                Assert.Fail("Firestore emulator unavailable (install google-cloud-cli-firestore-emulator; tests/run.sh does as root): " + Unavailable);
            }

            return HostPort!;
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>Removes every document of <paramref name="projectId"/>.</summary>
    public static async Task WipeAsync(string projectId)
    {
        using var http = new HttpClient();
        using var response = await http.DeleteAsync(new Uri($"http://{HostPort}/emulator/v1/projects/{projectId}/databases/(default)/documents"));
        response.EnsureSuccessStatusCode();
    }

    public static async Task StopAsync()
    {
        if (EmulatorProcess is null)
        {
            return;
        }

        // setsid made the gcloud wrapper a process-group leader: signal the whole group (wrapper and java).
        var group = EmulatorProcess.Id;
        Signal("-TERM", group);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await EmulatorProcess.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
        }

        Signal("-KILL", group);
        EmulatorProcess.Dispose();
        EmulatorProcess = null;
        HostPort = null;
    }

    private static void Signal(string signal, int group)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", [signal, "--", "-" + group]) { RedirectStandardError = true });
        kill?.WaitForExit();
    }

    private static async Task<string?> TryStartAsync()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/usr/bin/setsid"))
        {
            return "needs Linux with setsid";
        }

        var gcloud = Environment.GetEnvironmentVariable("PATH")?.Split(':').Select(p => Path.Combine(p, "gcloud")).FirstOrDefault(File.Exists);
        if (gcloud is null)
        {
            return "gcloud is not on PATH";
        }

        var port = FreePort();
        var start = new ProcessStartInfo("/usr/bin/setsid", [gcloud, "emulators", "firestore", "start", $"--host-port=127.0.0.1:{port}"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        var log = new System.Text.StringBuilder();
        EmulatorProcess = Process.Start(start)!;
        EmulatorProcess.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        EmulatorProcess.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        EmulatorProcess.BeginOutputReadLine();
        EmulatorProcess.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            if (EmulatorProcess.HasExited)
            {
                lock (log)
                {
                    return "gcloud exited: " + log;
                }
            }

            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/"));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    HostPort = $"127.0.0.1:{port}";
                    return null;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(250);
        }

        await StopAsync();
        return "did not answer within 90 s";
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
