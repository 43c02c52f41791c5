using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Local;
using ReverseImageSearch.Local.Storage;
using ReverseImageSearch.Tests.Local.Fakes;

namespace ReverseImageSearch.Tests.Local.Storage;

public class LocalBucketWatcherTests
{
    private const string Bucket = "images";

    /// <summary>Periodic scans are pushed far out so that only the scans a test causes happen; files count as quiet at once.</summary>
    private static readonly LocalBucketWatcherOptions Options = new()
    {
        DebounceInterval = TimeSpan.FromMilliseconds(100),
        SafetyScanInterval = TimeSpan.FromMinutes(10),
        StabilityInterval = TimeSpan.FromMilliseconds(50),
        QuietPeriod = TimeSpan.Zero,
    };

    private TempDirectory _temp = null!;
    private LocalObjectStore _store = null!;
    private InMemoryTaskQueue _queue = null!;

    [SetUp]
    public void SetUp()
    {
        _temp = new TempDirectory();
        _store = new LocalObjectStore(new Dictionary<string, string> { [Bucket] = _temp.Sub("bucket") }, _temp.Sub("buckets"), NullLogger<LocalObjectStore>.Instance);
        _queue = new InMemoryTaskQueue();
    }

    [TearDown]
    public void TearDown() => _temp.Dispose();

    [Test]
    public async Task CreateOverwriteAndDeleteWhileRunningAreAnnouncedWithTheStoresMetadata()
    {
        await using var watcher = NewWatcher(_queue);
        await watcher.StartAsync();

        var created = await _store.WriteAsync(Bucket, "cats/tom.jpg", Encoding.UTF8.GetBytes("first"), "image/jpeg");
        var events = await WaitForEventsAsync(1);
        Assert.That(events[0], Is.EqualTo(new StorageObjectEvent(StorageEventKind.Finalized, Bucket, "cats/tom.jpg", "image/jpeg", created.Size, created.Md5Hash, created.Generation, 1)));
        Assert.That(_queue.Tasks[0].Queue, Is.EqualTo(LocalEventQueues.StorageFinalized));

        var overwritten = await _store.WriteAsync(Bucket, "cats/tom.jpg", Encoding.UTF8.GetBytes("second version"), "image/jpeg");
        events = await WaitForEventsAsync(2);
        Assert.That(events[1].Kind, Is.EqualTo(StorageEventKind.Finalized));
        Assert.That(events[1].Generation, Is.EqualTo(overwritten.Generation).And.GreaterThan(created.Generation));
        Assert.That(events[1].Md5Hash, Is.EqualTo(overwritten.Md5Hash));
        Assert.That(events[1].Size, Is.EqualTo(overwritten.Size));

        await _store.DeleteAsync(Bucket, "cats/tom.jpg");
        events = await WaitForEventsAsync(3);
        Assert.That(events[2], Is.EqualTo(new StorageObjectEvent(StorageEventKind.Deleted, Bucket, "cats/tom.jpg", "image/jpeg", overwritten.Size, overwritten.Md5Hash, overwritten.Generation, 1)));
        Assert.That(_queue.Tasks[2].Queue, Is.EqualTo(LocalEventQueues.StorageDeleted));
    }

    [Test]
    public async Task ABaselineRecordsWhatIsThereWithoutAnnouncingItAndLaterChangesAreAnnounced()
    {
        await _store.WriteAsync(Bucket, "already.png", Encoding.UTF8.GetBytes("there before"), "image/png");
        await using var watcher = NewWatcher(_queue);
        await watcher.BaselineAsync();
        await watcher.StartAsync();
        Assert.That(_queue.Tasks, Is.Empty);

        await _store.WriteAsync(Bucket, "new.png", Encoding.UTF8.GetBytes("added later"), "image/png");
        var events = await WaitForEventsAsync(1);
        Assert.That(events.Select(e => e.Name), Is.EqualTo(new[] { "new.png" }));
    }

    [Test]
    public async Task ChangesMadeWhileStoppedAreFoundAtStart()
    {
        await _store.WriteAsync(Bucket, "a.png", Encoding.UTF8.GetBytes("a"), "image/png");
        await _store.WriteAsync(Bucket, "b.png", Encoding.UTF8.GetBytes("b"), "image/png");
        await using (var first = NewWatcher(_queue))
        {
            await first.StartAsync();
        }

        Assert.That(Events().Select(e => (e.Kind, e.Name)), Is.EqualTo(new[] { (StorageEventKind.Finalized, "a.png"), (StorageEventKind.Finalized, "b.png") }));

        var a = await _store.GetMetadataAsync(Bucket, "a.png");
        await _store.DeleteAsync(Bucket, "a.png");
        var b = await _store.WriteAsync(Bucket, "b.png", Encoding.UTF8.GetBytes("b, edited"), "image/png");
        var c = await _store.WriteAsync(Bucket, "sub/c.gif", Encoding.UTF8.GetBytes("c"), "image/gif");

        var restartedQueue = new InMemoryTaskQueue();
        await using var restarted = NewWatcher(restartedQueue);
        await restarted.StartAsync();

        var events = restartedQueue.PayloadsOf<StorageObjectEvent>(LocalEventQueues.StorageFinalized)
            .Concat(restartedQueue.PayloadsOf<StorageObjectEvent>(LocalEventQueues.StorageDeleted))
            .ToList();
        Assert.That(events, Is.EquivalentTo(new[]
        {
            new StorageObjectEvent(StorageEventKind.Deleted, Bucket, "a.png", "image/png", a!.Size, a.Md5Hash, a.Generation, 1),
            new StorageObjectEvent(StorageEventKind.Finalized, Bucket, "b.png", "image/png", b.Size, b.Md5Hash, b.Generation, 1),
            new StorageObjectEvent(StorageEventKind.Finalized, Bucket, "sub/c.gif", "image/gif", c.Size, c.Md5Hash, c.Generation, 1),
        }));
    }

    [Test]
    public async Task AFileStillBeingWrittenWaitsForTheNextScan()
    {
        var path = Path.Combine(_store.GetBucketRoot(Bucket), "big.jpg");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "partial");
        await using var watcher = NewWatcher(_queue);
        var appended = false;
        watcher.WaitBetweenLooks = _ =>
        {
            if (!appended)
            {
                // The writer is still at work between the scan's two looks.
                File.AppendAllText(path, " and the rest");
                appended = true;
            }

            return Task.CompletedTask;
        };

        var duringWrite = await watcher.ScanNowAsync();
        Assert.That(duringWrite, Is.EqualTo(0));
        Assert.That(_queue.Tasks, Is.Empty);

        var afterWrite = await watcher.ScanNowAsync();
        var complete = Encoding.UTF8.GetBytes("partial and the rest");
        Assert.That(afterWrite, Is.EqualTo(1));
        var announced = Events().Single();
        Assert.That(announced.Size, Is.EqualTo(complete.Length));
        Assert.That(announced.Md5Hash, Is.EqualTo(Convert.ToBase64String(MD5.HashData(complete))));
    }

    [Test]
    public async Task AFileWrittenInChunksWithPausesIsAnnouncedOnceWhenComplete()
    {
        // A slow copy: ten chunks, each pause longer than the scan's two looks and its debounce.
        await using var watcher = new LocalBucketWatcher(_store, Bucket, _queue, _temp.Sub("data"), Options with { QuietPeriod = TimeSpan.FromSeconds(1) }, NullLogger<LocalBucketWatcher>.Instance);
        await watcher.StartAsync();
        var path = Path.Combine(_store.GetBucketRoot(Bucket), "slow.jpg");
        var chunk = new byte[64 * 1024];
        await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite))
        {
            for (var i = 0; i < 10; i++)
            {
                Random.Shared.NextBytes(chunk);
                await file.WriteAsync(chunk);
                await file.FlushAsync();
                await Task.Delay(TimeSpan.FromMilliseconds(300));
            }
        }

        await WaitForEventsAsync(1);
        await Task.Delay(TimeSpan.FromSeconds(2)); // Any later announcement would have come by now.
        var announced = Events();
        Assert.That(announced.Select(e => e.Size), Is.EqualTo(new[] { 10L * chunk.Length }), "announced once, with the whole file");
        Assert.That(announced[0].Md5Hash, Is.EqualTo(Convert.ToBase64String(MD5.HashData(await File.ReadAllBytesAsync(path)))));
    }

    [Test]
    public async Task AnUnchangedFileIsNotAnnouncedAgainEvenByANewWatcher()
    {
        await _store.WriteAsync(Bucket, "a.png", Encoding.UTF8.GetBytes("a"), "image/png");
        await using (var watcher = NewWatcher(_queue))
        {
            Assert.That(await watcher.ScanNowAsync(), Is.EqualTo(1));
            Assert.That(await watcher.ScanNowAsync(), Is.EqualTo(0));
        }

        await using var another = NewWatcher(_queue);
        Assert.That(await another.ScanNowAsync(), Is.EqualTo(0));
        Assert.That(_queue.Tasks, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task HiddenAndTemporaryFilesAreNotObjects()
    {
        var root = _store.GetBucketRoot(Bucket);
        Directory.CreateDirectory(Path.Combine(root, ".trash"));
        File.WriteAllText(Path.Combine(root, ".trash", "old.png"), "x");
        File.WriteAllText(Path.Combine(root, ".upload.png.tmp"), "x");
        await using var watcher = NewWatcher(_queue);

        Assert.That(await watcher.ScanNowAsync(), Is.EqualTo(0));
    }

    [Test]
    public async Task EventsAreRepeatedWhenEnqueueingFailedSoNoneIsLost()
    {
        await _store.WriteAsync(Bucket, "a.png", Encoding.UTF8.GetBytes("a"), "image/png");
        await using var watcher = NewWatcher(_queue);
        _queue.FailWith = new IOException("queue unavailable");
        Assert.ThrowsAsync<IOException>(() => watcher.ScanNowAsync());

        _queue.FailWith = null;
        Assert.That(await watcher.ScanNowAsync(), Is.EqualTo(1));
        Assert.That(Events().Single().Name, Is.EqualTo("a.png"));
    }

    private LocalBucketWatcher NewWatcher(InMemoryTaskQueue queue) =>
        new(_store, Bucket, queue, _temp.Sub("data"), Options, NullLogger<LocalBucketWatcher>.Instance);

    private List<StorageObjectEvent> Events() =>
        _queue.Tasks.Select(task => task.Payload.Deserialize<StorageObjectEvent>(ReverseImageSearch.Core.CoreJson.Options)!).ToList();

    private async Task<List<StorageObjectEvent>> WaitForEventsAsync(int count)
    {
        await _queue.WaitUntilAsync(tasks => tasks.Count >= count);
        return Events();
    }
}
