namespace ReverseImageSearch.Local.Storage;

/// <summary>
/// Whether a path stays inside a folder once symbolic links are followed, as the operating system would follow
/// them when opening it. A bucket folder may hold links (by accident or not); none may lead a read, a write or a
/// listing outside it.
/// </summary>
internal static class FolderBoundary
{
    // As Linux's ELOOP limit: a chain this long is a loop.
    private const int MaxLinksFollowed = 40;

    /// <summary>True when <paramref name="path"/>, links followed, is <paramref name="folder"/> (links followed) or lies under it.</summary>
    public static bool Contains(string folder, string path)
    {
        var realFolder = Resolve(folder);
        var realPath = Resolve(path);
        return realPath == realFolder
            || (realPath.StartsWith(realFolder, StringComparison.Ordinal) && realPath[realFolder.Length] == Path.DirectorySeparatorChar);
    }

    /// <summary>The absolute path with every link along it replaced by its target; parts that do not exist are kept as written.</summary>
    public static string Resolve(string path)
    {
        var full = Path.GetFullPath(path);
        var current = Path.GetPathRoot(full)!;
        var pending = new Stack<string>(Segments(full[current.Length..]).Reverse());
        var followed = 0;
        while (pending.TryPop(out var segment))
        {
            if (segment == "..")
            {
                current = Path.GetDirectoryName(current) ?? current;
                continue;
            }

            var candidate = Path.Combine(current, segment);
            if (new FileInfo(candidate).LinkTarget is not { } target)
            {
                current = candidate;
                continue;
            }

            if (++followed > MaxLinksFollowed)
            {
                throw new IOException($"Too many levels of symbolic links at {candidate}.");
            }

            // The target replaces the link: absolute from its root, relative from the link's folder.
            if (Path.IsPathRooted(target))
            {
                current = Path.GetPathRoot(target)!;
                target = target[current.Length..];
            }

            foreach (var part in Segments(target).Reverse())
            {
                pending.Push(part);
            }
        }

        return current;
    }

    private static IEnumerable<string> Segments(string relative) =>
        relative.Split([Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar], StringSplitOptions.RemoveEmptyEntries)
            .Where(segment => segment != ".");
}
