namespace ReverseImageSearch.Local.Storage;

/// <summary>Replaces a file so that a crash leaves either the old or the new content, never a torn mix.</summary>
internal static class AtomicFile
{
    /// <summary>Temp files start with '.' so folder scans (object listing, the bucket watcher) skip them.</summary>
    public static string TempPathFor(string path) =>
        Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> content, DateTime? lastWriteTimeUtc = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tempPath = TempPathFor(path);
        try
        {
            using (var stream = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            if (lastWriteTimeUtc is { } time)
            {
                File.SetLastWriteTimeUtc(tempPath, time);
            }

            File.Move(tempPath, path, overwrite: true);
        }
        catch
        {
            TryDelete(tempPath);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp file is hidden and harmless.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
