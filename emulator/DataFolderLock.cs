using System.Globalization;

namespace ReverseImageSearch.Emulator;

/// <summary>
/// One writer per data folder: <c>serve</c> and <c>index</c> hold an exclusive lock on <c>{data}/.lock</c>
/// while they run (the operating system releases it when the process ends, however it ends) and write
/// their process id beside it, so a second one can name the first.
/// </summary>
internal sealed class DataFolderLock : IDisposable
{
    private readonly FileStream _lockFile;
    private readonly string _pidFile;

    private DataFolderLock(FileStream lockFile, string pidFile)
    {
        _lockFile = lockFile;
        _pidFile = pidFile;
    }

    /// <summary>The lock, or null with the reason another process holds it.</summary>
    public static DataFolderLock? TryAcquire(DirectoryInfo data, out string? heldBy)
    {
        Directory.CreateDirectory(data.FullName);
        var pidFile = Path.Combine(data.FullName, ".lock.pid");
        try
        {
            // FileShare.None takes an exclusive advisory lock (flock) on Unix, a sharing lock on Windows.
            var stream = new FileStream(Path.Combine(data.FullName, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            File.WriteAllText(pidFile, Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
            heldBy = null;
            return new DataFolderLock(stream, pidFile);
        }
        catch (IOException)
        {
            var pid = File.Exists(pidFile) ? File.ReadAllText(pidFile).Trim() : "";
            heldBy = pid.Length > 0 ? $"process {pid}{ProcessNames.Describe(pid)}" : "another process";
            return null;
        }
    }

    public void Dispose()
    {
        File.Delete(_pidFile);
        _lockFile.Dispose();
    }
}
