using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ReverseImageSearch.Emulator;

/// <summary>
/// The emulator's one answer to Ctrl+C and SIGTERM, whether they reach it alone or, from a terminal, together
/// with <c>dotnet run</c>: the first signal asks every command to stop (deliveries in flight give their task
/// back, SQLite closes its files); a second one, or a stop that takes longer than <see cref="ForceAfter"/>,
/// ends the process at once, which loses nothing either (leased tasks are delivered again, SQLite commits are
/// atomic). Nothing else in the process handles these signals: the hosts run with <see cref="Lifetime"/>.
/// </summary>
internal sealed class ShutdownSignals : IDisposable
{
    /// <summary>How long a host waits for its services to stop before it goes on closing anyway.</summary>
    public static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);

    public static readonly TimeSpan ForceAfter = TimeSpan.FromSeconds(10);

    private readonly CancellationTokenSource _requested = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _received;

    public ShutdownSignals() =>
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal), PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal)];

    public CancellationToken Token => _requested.Token;

    /// <summary>The conventional exit code of a command a signal stopped: 128 + the signal's number.</summary>
    public int InterruptedExitCode { get; private set; } = 130;

    /// <summary>Replaces the hosts' console lifetime, whose own signal handling would compete with this one.</summary>
    public static void Configure(IServiceCollection services)
    {
        services.AddSingleton<IHostLifetime, Lifetime>();
        services.Configure<HostOptions>(options => options.ShutdownTimeout = StopTimeout);
    }

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _requested.Dispose();
    }

    private void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref _received) > 1)
        {
            // The second signal takes its default action: the process ends now.
            context.Cancel = false;
            return;
        }

        context.Cancel = true;
        InterruptedExitCode = context.Signal == PosixSignal.SIGTERM ? 143 : 130;
        Console.Error.WriteLine("Stopping… (press Ctrl+C again to stop at once; unfinished work is picked up on the next start)");

        // Cancellation callbacks stop hosts; run them off the runtime's signal thread.
        ThreadPool.QueueUserWorkItem(_ => _requested.Cancel());
        var exitCode = InterruptedExitCode;
        _ = Task.Delay(ForceAfter).ContinueWith(
            _ =>
            {
                Console.Error.WriteLine($"Still stopping after {ForceAfter.TotalSeconds:0} s: ending the process now.");
                Environment.Exit(exitCode);
            },
            CancellationToken.None,
            TaskContinuationOptions.None,
            TaskScheduler.Default);
    }

    /// <summary>A host lifetime that leaves the signals to <see cref="ShutdownSignals"/>.</summary>
    private sealed class Lifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
