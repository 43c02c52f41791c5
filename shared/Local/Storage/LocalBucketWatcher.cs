using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Local.Storage;

public sealed record LocalBucketWatcherOptions
{
    /// <summary>Quiet time after the last file-system hint before a scan runs.</summary>
    public TimeSpan DebounceInterval { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>A full scan runs at least this often, in case hints were lost.</summary>
    public TimeSpan SafetyScanInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Time between the two looks at a changed file; it is announced only if both looks agree.</summary>
    public TimeSpan StabilityInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// How long a changed file must go unwritten before it is announced: a slow copy pauses between its
    /// writes, and each pause would otherwise announce (and embed) a truncated file.
    /// </summary>
    public TimeSpan QuietPeriod { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>
/// Announces object finalize and delete events for one bucket folder, the local stand-in for Cloud Storage
/// triggers. The truth is a reconciliation scan of the folder against a persisted snapshot; file-system
/// notifications only hint that a scan is due. Events are enqueued before the snapshot is saved, so a
/// crash repeats events rather than losing them (handlers are idempotent).
/// </summary>
public sealed partial class LocalBucketWatcher : IAsyncDisposable
{
    private readonly LocalObjectStore _store;
    private readonly string _bucket;
    private readonly ITaskQueue _queue;
    private readonly LocalBucketWatcherOptions _options;
    private readonly ILogger<LocalBucketWatcher> _logger;
    private readonly BucketSnapshot _snapshotFile;
    private readonly SemaphoreSlim _scanGate = new(1, 1);
    private readonly Channel<bool> _hints = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly CancellationTokenSource _stopping = new();
    private Dictionary<string, SnapshotEntry>? _snapshot;
    private FileSystemWatcher? _fileSystemWatcher;
    private Task? _loop;
    private int _disposed;

    public LocalBucketWatcher(LocalObjectStore store, string bucket, ITaskQueue queue, string dataDirectory, LocalBucketWatcherOptions options, ILogger<LocalBucketWatcher> logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        _store = store;
        _bucket = bucket;
        _queue = queue;
        _options = options;
        _logger = logger;
        _snapshotFile = new BucketSnapshot(Path.Combine(dataDirectory, $"bucket-snapshot.{bucket}.json"));
    }

    /// <summary>Test seam: what happens between the two looks at changed files.</summary>
    internal Func<CancellationToken, Task>? WaitBetweenLooks { get; set; }

    /// <summary>Scans once (catching changes made while stopped), then watches until disposed.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_loop is not null)
        {
            throw new InvalidOperationException("The watcher is already started.");
        }

        var root = _store.GetBucketRoot(_bucket);
        Directory.CreateDirectory(root);
        // Watch before the first scan so nothing changed during it goes unnoticed until the safety scan.
        _fileSystemWatcher = TryWatch(root);
        await ScanNowAsync(cancellationToken);
        _loop = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
    }

    /// <summary>Compares the folder with the snapshot, enqueues an event per difference, then saves the snapshot.</summary>
    /// <returns>How many events were enqueued.</returns>
    public Task<int> ScanNowAsync(CancellationToken cancellationToken = default) => ScanExclusiveAsync(announce: true, cancellationToken);

    /// <summary>
    /// Records the folder as it is now without announcing anything: for a first start, whose backfill
    /// indexes the images already there. Later scans announce only what changes after this.
    /// </summary>
    public Task BaselineAsync(CancellationToken cancellationToken = default) => ScanExclusiveAsync(announce: false, cancellationToken);

    private async Task<int> ScanExclusiveAsync(bool announce, CancellationToken cancellationToken)
    {
        await _scanGate.WaitAsync(cancellationToken);
        try
        {
            return await ScanAsync(announce, cancellationToken);
        }
        finally
        {
            _scanGate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stopping.CancelAsync();
        _fileSystemWatcher?.Dispose();
        if (_loop is not null)
        {
            try
            {
                await _loop;
            }
            catch (OperationCanceledException)
            {
            }
        }

        _stopping.Dispose();
        _scanGate.Dispose();
    }

    private async Task<int> ScanAsync(bool announce, CancellationToken cancellationToken)
    {
        _snapshot ??= _snapshotFile.Load();
        var firstLook = _store.EnumerateFiles(_bucket, prefix: null);
        var seen = new HashSet<string>(firstLook.Select(file => file.Name), StringComparer.Ordinal);
        var changed = firstLook.Where(file => !_snapshot.TryGetValue(file.Name, out var known) || known.Size != file.Size || known.LastWriteTimeUtc != file.LastWriteTimeUtc).ToList();
        var deleted = _snapshot.Keys.Where(name => !seen.Contains(name)).Order(StringComparer.Ordinal).ToList();

        var finalized = new List<(string Name, FileFingerprint Fingerprint)>();
        if (changed.Count > 0)
        {
            var hashed = new List<(LocalFileEntry Entry, FileFingerprint? Fingerprint)>();
            foreach (var file in changed)
            {
                hashed.Add((file, await Task.Run(() => _store.Fingerprint(file.FullPath), cancellationToken)));
            }

            // The second look waits until the youngest change has been quiet for the quiet period.
            var youngest = changed.Max(file => file.LastWriteTimeUtc);
            var untilQuiet = _options.QuietPeriod - Age(youngest);
            var wait = untilQuiet > _options.StabilityInterval && untilQuiet <= _options.QuietPeriod ? untilQuiet : _options.StabilityInterval;
            await (WaitBetweenLooks?.Invoke(cancellationToken) ?? Task.Delay(wait, cancellationToken));
            var unstable = 0;
            var lookAgainIn = TimeSpan.Zero;
            foreach (var (entry, fingerprint) in hashed)
            {
                var secondLook = new FileInfo(entry.FullPath);
                if (fingerprint is null || !secondLook.Exists)
                {
                    continue; // Gone already; if it was known, the next scan announces the deletion.
                }

                if (secondLook.Length != fingerprint.Size || secondLook.LastWriteTimeUtc != fingerprint.LastWriteTimeUtc
                    || fingerprint.Size != entry.Size || fingerprint.LastWriteTimeUtc != entry.LastWriteTimeUtc)
                {
                    unstable++;
                    continue;
                }

                // A time in the future (a skewed clock) cannot be waited out; two agreeing looks must do.
                var age = Age(secondLook.LastWriteTimeUtc);
                if (age >= TimeSpan.Zero && age < _options.QuietPeriod)
                {
                    unstable++;
                    lookAgainIn = TimeSpan.FromTicks(Math.Max(lookAgainIn.Ticks, (_options.QuietPeriod - age).Ticks));
                    continue;
                }

                finalized.Add((entry.Name, fingerprint));
            }

            if (unstable > 0)
            {
                LogStillChanging(_logger, unstable, _bucket);
                HintAfter(lookAgainIn);
            }
        }

        if (finalized.Count == 0 && deleted.Count == 0)
        {
            return 0;
        }

        var next = new Dictionary<string, SnapshotEntry>(_snapshot, StringComparer.Ordinal);
        foreach (var (name, fingerprint) in finalized)
        {
            var generation = ObjectNames.GenerationOf(fingerprint.LastWriteTimeUtc);
            if (announce)
            {
                await PublishAsync(new StorageObjectEvent(StorageEventKind.Finalized, _bucket, name, ObjectNames.ContentTypeFor(name), fingerprint.Size, fingerprint.Md5Hash, generation, Metageneration: 1), cancellationToken);
            }

            next[name] = new SnapshotEntry(fingerprint.Size, fingerprint.LastWriteTimeUtc, fingerprint.Md5Hash, generation);
        }

        foreach (var name in deleted)
        {
            var old = _snapshot[name];
            if (announce)
            {
                await PublishAsync(new StorageObjectEvent(StorageEventKind.Deleted, _bucket, name, ObjectNames.ContentTypeFor(name), old.Size, old.Md5Hash, old.Generation, Metageneration: 1), cancellationToken);
            }

            next.Remove(name);
        }

        _snapshotFile.Save(next);
        _snapshot = next;
        if (!announce)
        {
            LogRecordedPresent(_logger, _bucket, next.Count);
            return 0;
        }

        LogAnnounced(_logger, _bucket, finalized.Count, deleted.Count);
        return finalized.Count + deleted.Count;
    }

    private static TimeSpan Age(DateTime lastWriteTimeUtc) => DateTime.UtcNow - lastWriteTimeUtc;

    /// <summary>Asks for a scan once <paramref name="delay"/> has passed (at once when it is zero).</summary>
    private void HintAfter(TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero || _disposed == 1)
        {
            _hints.Writer.TryWrite(true);
            return;
        }

        try
        {
            _ = Task.Delay(delay, _stopping.Token).ContinueWith(
                _ => _hints.Writer.TryWrite(true),
                CancellationToken.None,
                TaskContinuationOptions.OnlyOnRanToCompletion,
                TaskScheduler.Default);
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile: no more scans.
        }
    }

    private Task PublishAsync(StorageObjectEvent storageEvent, CancellationToken cancellationToken)
    {
        var queue = storageEvent.Kind == StorageEventKind.Finalized ? LocalEventQueues.StorageFinalized : LocalEventQueues.StorageDeleted;
        return _queue.EnqueueAsync(queue, JsonSerializer.SerializeToElement(storageEvent, CoreJson.Options), options: null, cancellationToken);
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                if (await WaitForHintAsync(_options.SafetyScanInterval, stopping))
                {
                    // Debounce: scan once the folder has been quiet for a while.
                    while (await WaitForHintAsync(_options.DebounceInterval, stopping))
                    {
                    }
                }

                await ScanNowAsync(stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Nothing is lost: the snapshot was not saved, so the next scan finds the same differences.
                LogScanFailed(_logger, e, _bucket);
            }
        }
    }

    /// <returns>True when a hint arrived before <paramref name="timeout"/>.</returns>
    private async Task<bool> WaitForHintAsync(TimeSpan timeout, CancellationToken stopping)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timer.CancelAfter(timeout);
        try
        {
            await _hints.Reader.ReadAsync(timer.Token);
            return true;
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            return false;
        }
    }

    private FileSystemWatcher? TryWatch(string root)
    {
        try
        {
            var watcher = new FileSystemWatcher(root)
            {
                IncludeSubdirectories = true,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size,
            };
            watcher.Created += (_, _) => _hints.Writer.TryWrite(true);
            watcher.Changed += (_, _) => _hints.Writer.TryWrite(true);
            watcher.Deleted += (_, _) => _hints.Writer.TryWrite(true);
            watcher.Renamed += (_, _) => _hints.Writer.TryWrite(true);
            watcher.Error += (_, args) =>
            {
                LogNotificationsOverflowed(_logger, args.GetException(), _bucket);
                _hints.Writer.TryWrite(true);
            };
            watcher.EnableRaisingEvents = true;
            return watcher;
        }
        catch (Exception e) when (e is IOException or ArgumentException or PlatformNotSupportedException)
        {
            // inotify limits can be exhausted; the periodic scan still finds every change, only later.
            LogCannotWatch(_logger, e, root, _options.SafetyScanInterval);
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Count} file(s) in bucket {Bucket} are still changing; looking again later")]
    private static partial void LogStillChanging(ILogger logger, int count, string bucket);

    [LoggerMessage(Level = LogLevel.Information, Message = "Bucket {Bucket}: recorded {Count} object(s) as already present")]
    private static partial void LogRecordedPresent(ILogger logger, string bucket, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Bucket {Bucket}: announced {Finalized} finalized and {Deleted} deleted object(s)")]
    private static partial void LogAnnounced(ILogger logger, string bucket, int finalized, int deleted);

    [LoggerMessage(Level = LogLevel.Error, Message = "Scanning bucket {Bucket} failed; the next scan retries")]
    private static partial void LogScanFailed(ILogger logger, Exception exception, string bucket);

    [LoggerMessage(Level = LogLevel.Warning, Message = "File notifications for bucket {Bucket} overflowed; scanning")]
    private static partial void LogNotificationsOverflowed(ILogger logger, Exception exception, string bucket);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot watch {Root}; relying on scans every {Interval}")]
    private static partial void LogCannotWatch(ILogger logger, Exception exception, string root, TimeSpan interval);
}
