using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>Runs the built emulator (emulator/bin/{configuration}/net10.0/ris-emulator.dll) as its own process.</summary>
internal sealed class EmulatorProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private EmulatorProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => Append(_stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(_stderr, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>The tests and the emulator are built with the same configuration: bin/{Configuration}/net10.0.</summary>
    public static string Configuration => new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;

    public static string Dll
    {
        get
        {
            var dll = Path.Combine(TestPaths.RepoRoot, "emulator", "bin", Configuration, "net10.0", "ris-emulator.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException("Build the emulator first.", dll);
        }
    }

    public bool HasExited => _process.HasExited;

    public int Id => _process.Id;

    /// <summary>A loopback TCP port nothing listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public int ExitCode => _process.ExitCode;

    public string StandardOutput => Read(_stdout);

    public string StandardError => Read(_stderr);

    public string Output => $"stdout:\n{StandardOutput}\nstderr:\n{StandardError}";

    public static EmulatorProcess Start(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null) =>
        Start("dotnet", [Dll, .. arguments], environment);

    /// <summary>
    /// As the README says to start it, <c>dotnet run --project emulator -- ...</c> (without building), in a
    /// process group of its own led by <c>dotnet run</c>, as a terminal starts a foreground job: <see cref="Id"/>
    /// is the group's id.
    /// </summary>
    public static EmulatorProcess StartThroughDotnetRun(IEnumerable<string> arguments, string? workingDirectory = null) =>
        Start("setsid", ["dotnet", "run", "--project", Path.Combine(TestPaths.RepoRoot, "emulator"), "-c", Configuration, "--no-build", "--", .. arguments], workingDirectory: workingDirectory);

    /// <summary>Runs the given program (an installed ris-emulator, say) with the emulator's test environment.</summary>
    public static EmulatorProcess Start(string program, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null)
        {
            start.WorkingDirectory = workingDirectory;
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // A narrow console keeps progress output on one line per update; no colour codes in what tests read.
        start.Environment["NO_COLOR"] = "1";
        start.Environment["COLUMNS"] = "120";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        return new EmulatorProcess(Process.Start(start)!);
    }

    public static Task<EmulatorProcess> RunAsync(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null) =>
        WaitAsync(Start(arguments, environment), timeout);

    public static async Task<EmulatorProcess> WaitAsync(EmulatorProcess process, TimeSpan? timeout = null)
    {
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        await process._process.WaitForExitAsync(cancel.Token);
        process._process.WaitForExit();
        return process;
    }

    public async Task WaitForExitAsync(CancellationToken cancellationToken)
    {
        await _process.WaitForExitAsync(cancellationToken);
        _process.WaitForExit();
    }

    /// <summary>Ends the process with SIGKILL, as a crash or the OOM killer would: nothing of it runs after this.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    private static void Append(StringBuilder buffer, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (buffer)
        {
            buffer.AppendLine(line);
        }
    }

    private static string Read(StringBuilder buffer)
    {
        lock (buffer)
        {
            return buffer.ToString();
        }
    }
}
