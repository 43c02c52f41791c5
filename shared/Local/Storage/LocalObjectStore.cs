using System.Collections.Concurrent;
using System.IO.Enumeration;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Local.Storage;

/// <summary>One file of a bucket folder as the file system reports it, before any hashing.</summary>
internal sealed record LocalFileEntry(string Name, string FullPath, long Size, DateTime LastWriteTimeUtc);

/// <summary>
/// Buckets as folders: an object is a file, its name the path relative to the bucket folder with '/'
/// separators. Metadata is derived from the file (content type from the extension, MD5 computed and
/// cached, generation from the last-write time), so files dropped into the folder by hand are objects too.
/// Symbolic links are followed only while they stay inside the folder: a linked file is an object when its target
/// is in the folder, linked folders are never entered, and no read, write or listing reaches a file outside.
/// </summary>
public sealed partial class LocalObjectStore : IObjectStore
{
    private readonly IReadOnlyDictionary<string, string> _bucketRoots;
    private readonly string _defaultParentDirectory;
    private readonly ILogger<LocalObjectStore> _logger;
    private readonly ConcurrentDictionary<string, CachedHash> _md5Cache = new(StringComparer.Ordinal);

    /// <param name="bucketRoots">Buckets that live in a chosen folder.</param>
    /// <param name="defaultParentDirectory">Every other bucket is the folder &lt;parent&gt;/&lt;bucket&gt;, created on demand.</param>
    public LocalObjectStore(IReadOnlyDictionary<string, string> bucketRoots, string defaultParentDirectory, ILogger<LocalObjectStore> logger)
    {
        ArgumentNullException.ThrowIfNull(bucketRoots);
        ArgumentException.ThrowIfNullOrEmpty(defaultParentDirectory);
        _bucketRoots = bucketRoots.ToDictionary(pair => pair.Key, pair => Path.GetFullPath(pair.Value), StringComparer.Ordinal);
        _defaultParentDirectory = Path.GetFullPath(defaultParentDirectory);
        _logger = logger;
    }

    /// <summary>The folder holding <paramref name="bucket"/> (not created).</summary>
    public string GetBucketRoot(string bucket)
    {
        if (_bucketRoots.TryGetValue(bucket, out var root))
        {
            return root;
        }

        ObjectNames.ValidateBucket(bucket);
        return Path.Combine(_defaultParentDirectory, bucket);
    }

    public async IAsyncEnumerable<StoredObject> ListAsync(string bucket, string? prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var entry in EnumerateFiles(bucket, prefix))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var described = await Task.Run(() => Describe(bucket, entry.Name), cancellationToken);
            if (described is not null)
            {
                yield return described;
            }
        }
    }

    public Task<StoredObject?> GetMetadataAsync(string bucket, string name, CancellationToken cancellationToken = default)
    {
        ObjectNames.Validate(name);
        return Task.Run(() => Describe(bucket, name), cancellationToken);
    }

    public async Task<byte[]> ReadAsync(string bucket, string name, CancellationToken cancellationToken = default)
    {
        var path = PathInside(bucket, name) ?? throw new ObjectNotFoundException(bucket, name);
        try
        {
            return await File.ReadAllBytesAsync(path, cancellationToken);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ObjectNotFoundException(bucket, name);
        }
    }

    /// <remarks>The content type is not stored: a folder has nowhere to keep it, so it is always derived
    /// from the name's extension, as for files copied in by hand.</remarks>
    public Task<StoredObject> WriteAsync(string bucket, string name, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken = default)
    {
        var path = PathInside(bucket, name) ?? throw new ObjectNotFoundException(bucket, name);
        return Task.Run(
            () =>
            {
                AtomicFile.WriteAllBytes(path, content.Span, NextLastWriteTime(path));
                LogWrote(_logger, bucket, name, content.Length);
                return Describe(bucket, name) ?? throw new IOException($"gs://{bucket}/{name} vanished right after it was written.");
            },
            cancellationToken);
    }

    public Task<bool> DeleteAsync(string bucket, string name, CancellationToken cancellationToken = default)
    {
        var path = PathInside(bucket, name);
        if (path is null || !File.Exists(path))
        {
            return Task.FromResult(false);
        }

        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
            return Task.FromResult(false);
        }

        _md5Cache.TryRemove(path, out _);
        LogDeleted(_logger, bucket, name);
        return Task.FromResult(true);
    }

    /// <summary>The visible files under <paramref name="prefix"/>, in ordinal name order, without hashing them.</summary>
    internal IReadOnlyList<LocalFileEntry> EnumerateFiles(string bucket, string? prefix)
    {
        var root = GetBucketRoot(bucket);
        prefix ??= "";
        // Start at the deepest folder the prefix names, so listing a small folder of a big bucket stays cheap.
        var folderOfPrefix = prefix.Contains('/', StringComparison.Ordinal) ? prefix[..prefix.LastIndexOf('/')] : "";
        if (folderOfPrefix.Length > 0 && (ObjectNames.IsHidden(folderOfPrefix) || !IsValidName(folderOfPrefix)))
        {
            return [];
        }

        var start = folderOfPrefix.Length == 0 ? root : Path.Combine(root, folderOfPrefix);
        if (!Directory.Exists(start))
        {
            return [];
        }

        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
        // Links are reparse points: linked folders are not entered, linked files count only when they point inside.
        var files = new FileSystemEnumerable<LocalFileEntry>(
            start,
            (ref FileSystemEntry entry) =>
            {
                var fullPath = entry.ToFullPath();
                var name = Path.GetRelativePath(root, fullPath).Replace(Path.DirectorySeparatorChar, '/');
                return new LocalFileEntry(name, fullPath, entry.Length, entry.LastWriteTimeUtc.UtcDateTime);
            },
            options)
        {
            ShouldIncludePredicate = (ref FileSystemEntry entry) => !entry.IsDirectory && !entry.FileName.StartsWith('.')
                && (!IsLink(entry) || FolderBoundary.Contains(root, entry.ToFullPath())),
            ShouldRecursePredicate = (ref FileSystemEntry entry) => !entry.FileName.StartsWith('.') && !IsLink(entry),
        };

        return files
            .Where(file => file.Name.StartsWith(prefix, StringComparison.Ordinal))
            .OrderBy(file => file.Name, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>The object's metadata from its file, or null when there is no such file.</summary>
    internal StoredObject? Describe(string bucket, string name)
    {
        var path = PathInside(bucket, name);
        var fingerprint = path is null ? null : Fingerprint(path);
        return fingerprint is null
            ? null
            : new StoredObject(
                bucket,
                name,
                fingerprint.Size,
                ObjectNames.ContentTypeFor(name),
                fingerprint.Md5Hash,
                Crc32c: null,
                ObjectNames.GenerationOf(fingerprint.LastWriteTimeUtc),
                Metageneration: 1,
                new DateTimeOffset(fingerprint.LastWriteTimeUtc, TimeSpan.Zero));
    }

    /// <summary>Size, last-write time and MD5 that belong together: the file did not change while it was hashed.
    /// Null when the file does not exist.</summary>
    internal FileFingerprint? Fingerprint(string path)
    {
        const int maxAttempts = 5;
        for (var attempt = 1; ; attempt++)
        {
            var before = new FileInfo(path);
            if (!before.Exists)
            {
                return null;
            }

            var (size, time) = (before.Length, before.LastWriteTimeUtc);
            if (_md5Cache.TryGetValue(path, out var cached) && cached.Size == size && cached.LastWriteTimeUtc == time)
            {
                return new FileFingerprint(size, time, cached.Md5Hash);
            }

            string md5;
            try
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                md5 = Convert.ToBase64String(MD5.HashData(stream));
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                return null;
            }

            var after = new FileInfo(path);
            if (!after.Exists)
            {
                return null;
            }

            if (after.Length == size && after.LastWriteTimeUtc == time)
            {
                _md5Cache[path] = new CachedHash(size, time, md5);
                return new FileFingerprint(size, time, md5);
            }

            if (attempt == maxAttempts)
            {
                // Still being written: report what was seen without caching it; the watcher waits for stability anyway.
                return new FileFingerprint(size, time, md5);
            }
        }
    }

    private string PathOf(string bucket, string name)
    {
        ObjectNames.Validate(name);
        return Path.Combine(GetBucketRoot(bucket), name.Replace('/', Path.DirectorySeparatorChar));
    }

    /// <summary>The object's file, or null when links along its path lead out of the bucket folder.</summary>
    private string? PathInside(string bucket, string name)
    {
        var path = PathOf(bucket, name);
        return FolderBoundary.Contains(GetBucketRoot(bucket), path) ? path : null;
    }

    private static bool IsLink(in FileSystemEntry entry) => (entry.Attributes & FileAttributes.ReparsePoint) != 0;

    private static bool IsValidName(string name)
    {
        try
        {
            ObjectNames.Validate(name);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>File-system clocks are coarse (a few milliseconds on Linux), so two quick overwrites could share a
    /// last-write time and thus a generation; pushing the time one microsecond past the old one keeps generations growing.</summary>
    private static DateTime NextLastWriteTime(string path)
    {
        var now = DateTime.UtcNow;
        var nowTruncated = new DateTime(now.Ticks - (now.Ticks % TimeSpan.TicksPerMicrosecond), DateTimeKind.Utc);
        var existing = new FileInfo(path);
        if (!existing.Exists)
        {
            return nowTruncated;
        }

        var old = existing.LastWriteTimeUtc;
        var oldTruncated = old.Ticks - (old.Ticks % TimeSpan.TicksPerMicrosecond);
        return nowTruncated.Ticks > oldTruncated ? nowTruncated : new DateTime(oldTruncated + TimeSpan.TicksPerMicrosecond, DateTimeKind.Utc);
    }

    private sealed record CachedHash(long Size, DateTime LastWriteTimeUtc, string Md5Hash);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Wrote gs://{Bucket}/{Name} ({Size} bytes)")]
    private static partial void LogWrote(ILogger logger, string bucket, string name, int size);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Deleted gs://{Bucket}/{Name}")]
    private static partial void LogDeleted(ILogger logger, string bucket, string name);
}

internal sealed record FileFingerprint(long Size, DateTime LastWriteTimeUtc, string Md5Hash);
