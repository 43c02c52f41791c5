using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace ReverseImageSearch.Emulator;

/// <summary>Who holds a port or a folder, for error lines: from /proc on Linux, otherwise unknown.</summary>
internal static class ProcessNames
{
    /// <summary>" (command line)" of the process, or "" when it cannot be read.</summary>
    public static string Describe(string pid)
    {
        try
        {
            var commandLine = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
            return commandLine.Length == 0 ? "" : $" ({(commandLine.Length > 120 ? commandLine[..117] + "..." : commandLine)})";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    /// <summary>Null when <paramref name="host"/>:<paramref name="port"/> can be listened on, otherwise why not.</summary>
    public static string? PortProblem(string host, int port)
    {
        var address = host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(host);
        try
        {
            var listener = new TcpListener(address, port);
            listener.Start();
            listener.Stop();
            return null;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            return ListeningProcess(port) is { } pid ? $"is in use by process {pid}{Describe(pid)}" : "is in use by another process";
        }
        catch (SocketException ex)
        {
            return $"cannot be listened on at {host}: {ex.Message}";
        }
    }

    /// <summary>The process listening on the TCP port, found through its socket's inode (Linux only).</summary>
    private static string? ListeningProcess(int port)
    {
        try
        {
            var inodes = new HashSet<string>(StringComparer.Ordinal);
            foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" }.Where(File.Exists))
            {
                foreach (var columns in File.ReadLines(table).Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)))
                {
                    // local_address is ADDRESS:PORT in hex; state 0A is LISTEN; the inode is the tenth column.
                    var local = columns[1];
                    if (columns[3] == "0A" && int.Parse(local[(local.IndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture) == port)
                    {
                        inodes.Add($"socket:[{columns[9]}]");
                    }
                }
            }

            foreach (var process in Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)))
            {
                try
                {
                    if (Directory.EnumerateFileSystemEntries($"/proc/{process}/fd").Any(fd => new FileInfo(fd).LinkTarget is { } target && inodes.Contains(target)))
                    {
                        return process;
                    }
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // Another user's process, or one that just ended.
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            // Not Linux, or /proc is not readable: the holder stays unknown.
        }

        return null;
    }
}
