using System.Diagnostics;
using System.Globalization;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>Signals a process group as a terminal does, and sees which of its processes still live (Linux /proc).</summary>
internal static class ProcessGroup
{
    public static void Signal(int groupId, string signal) => Kill(signal, "-" + groupId.ToString(CultureInfo.InvariantCulture));

    public static void SignalProcess(int processId, string signal) => Kill(signal, processId.ToString(CultureInfo.InvariantCulture));

    /// <summary>The live (not zombie) processes of the group, with their command lines.</summary>
    public static IReadOnlyList<string> Members(int groupId)
    {
        var members = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => Path.GetFileName(d).All(char.IsAsciiDigit)))
        {
            try
            {
                // /proc/PID/stat: pid (comm) state ppid pgrp ...; comm may hold spaces, so split after its ')'.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (fields[0] != "Z" && fields[2] == groupId.ToString(CultureInfo.InvariantCulture))
                {
                    members.Add($"{Path.GetFileName(dir)}: {File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ')}");
                }
            }
            catch (IOException)
            {
                // The process ended while we looked.
            }
        }

        return members;
    }

    /// <summary>How long until every process of the group ended, or null when some still live after <paramref name="limit"/>.</summary>
    public static async Task<TimeSpan?> WaitUntilGoneAsync(int groupId, TimeSpan limit)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < limit)
        {
            if (Members(groupId).Count == 0)
            {
                return watch.Elapsed;
            }

            await Task.Delay(50);
        }

        return null;
    }

    private static void Kill(string signal, string target)
    {
        using var kill = Process.Start("kill", ["-s", signal, "--", target])!;
        kill.WaitForExit();
        Assert.That(kill.ExitCode, Is.Zero, $"kill -s {signal} -- {target}");
    }
}
