using System.Diagnostics;
using System.Globalization;

namespace ReverseImageSearch.Local.Tasks;

/// <summary>
/// Names the process that holds a task's lease (machine, process id and start time), so a process that
/// starts on the same file can tell that a lease's holder no longer exists (killed, crashed) and deliver
/// its tasks again at once instead of waiting out the lease. The start time tells a reused process id
/// apart. A holder on another machine cannot be checked; its leases only expire.
/// </summary>
internal static class LeaseOwner
{
    // Start times read by two processes may differ by rounding; a reused id starts much later than this.
    private static readonly TimeSpan StartTimeTolerance = TimeSpan.FromSeconds(2);

    public static string Current { get; } = Describe(Environment.MachineName, Environment.ProcessId, StartTicks(Process.GetCurrentProcess()));

    /// <summary>True when <paramref name="owner"/> names a process of this machine that has ended.</summary>
    public static bool IsGone(string owner)
    {
        var parts = owner.Split('|');
        if (parts.Length != 3
            || parts[0] != Environment.MachineName
            || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var processId)
            || !long.TryParse(parts[2], CultureInfo.InvariantCulture, out var startTicks))
        {
            return false;
        }

        try
        {
            using var process = Process.GetProcessById(processId);
            return process.HasExited || Math.Abs(StartTicks(process) - startTicks) > StartTimeTolerance.Ticks;
        }
        catch (ArgumentException)
        {
            return true; // No process with that id.
        }
        catch (InvalidOperationException)
        {
            return true; // It exited while being looked at.
        }
    }

    internal static long StartTicks(Process process) => process.StartTime.ToUniversalTime().Ticks;

    internal static string Describe(string machine, int processId, long startTicks) =>
        string.Create(CultureInfo.InvariantCulture, $"{machine}|{processId}|{startTicks}");
}
