using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Local;
using ReverseImageSearch.Local.Database;
using ReverseImageSearch.Local.Documents;
using ReverseImageSearch.Local.Tasks;
using ReverseImageSearch.Tests.Local.Tasks;

namespace ReverseImageSearch.Tests.Local.Documents;

public sealed class SqliteDocumentStoreTests
{
    private const string TasksPath = "_ext-demo/tasks";
    private const string MetadataPath = "_ext-demo/metadata";
    private const string ChunkPath = "_ext-demo/tasks/enqueues/ext-demo-task1";

    private TestDatabase _files = null!;
    private SqliteTaskQueue _queue = null!;
    private SqliteDocumentStore _store = null!;

    [SetUp]
    public void SetUp()
    {
        _files = new TestDatabase();
        _store = NewStore(_files.Database);
    }

    [TearDown]
    public void TearDown() => _files.Dispose();

    [Test]
    public async Task MissingDocumentReadsAsNull()
    {
        Assert.That(await _store.GetAsync(TasksPath), Is.Null);
    }

    [Test]
    public async Task ListingACollectionGivesItsOwnDocumentsOnlyInPathOrder()
    {
        await _store.SetAsync("_ext-demo/metadata/datapoints/b.jpg", Fields(("status", "SKIPPED")), SetMode.Overwrite);
        await _store.SetAsync("_ext-demo/metadata/datapoints/a.jpg", Fields(("status", "INDEXED")), SetMode.Overwrite);
        await _store.SetAsync("_ext-demo/metadata/datapoints/a.jpg/versions/1", Fields(("status", "OLD")), SetMode.Overwrite);
        await _store.SetAsync("_ext-demo/metadata/datapoints0/c.jpg", Fields(("status", "OTHER")), SetMode.Overwrite);
        await _store.SetAsync(MetadataPath, Fields(("status", "INDEX_DEPLOYED")), SetMode.Overwrite);

        var listed = await _store.ListAsync("_ext-demo/metadata/datapoints");

        Assert.That(listed.Select(d => d.Path), Is.EqualTo(new[] { "_ext-demo/metadata/datapoints/a.jpg", "_ext-demo/metadata/datapoints/b.jpg" }));
        Assert.That(listed.Select(d => d.GetString("status")), Is.EqualTo(new[] { "INDEXED", "SKIPPED" }));
        Assert.That(await _store.ListAsync("_ext-demo/metadata/none"), Is.Empty);
    }

    [Test]
    public async Task OverwriteReplacesTheWholeDocument()
    {
        await _store.SetAsync(TasksPath, Fields(("status", "PENDING"), ("totalLength", 3L)), SetMode.Overwrite);
        await _store.SetAsync(TasksPath, Fields(("status", "DONE")), SetMode.Overwrite);

        var document = await _store.GetAsync(TasksPath);

        Assert.That(document!.Fields, Is.EquivalentTo(Fields(("status", "DONE"))));
    }

    [Test]
    public async Task MergeWritesTheGivenFieldsKeepsTheOthersAndFieldDeleteRemovesOne()
    {
        await _store.SetAsync(MetadataPath, Fields(("status", "INDEX_BUILDING"), ("operation", "op/1"), ("outputShape", 1280L)), SetMode.Overwrite);

        await _store.SetAsync(MetadataPath, Fields(("status", "INDEX_DEPLOYED"), ("operation", FieldDelete.Value), ("index", "idx/1")), SetMode.Merge);

        var document = await _store.GetAsync(MetadataPath);
        Assert.That(document!.Fields, Is.EquivalentTo(Fields(("status", "INDEX_DEPLOYED"), ("outputShape", 1280L), ("index", "idx/1"))));
    }

    [Test]
    public async Task MergeCreatesAMissingDocument()
    {
        await _store.SetAsync(MetadataPath, Fields(("status", "INDEX_BUILDING"), ("operation", FieldDelete.Value)), SetMode.Merge);

        Assert.That((await _store.GetAsync(MetadataPath))!.Fields, Is.EquivalentTo(Fields(("status", "INDEX_BUILDING"))));
    }

    [Test]
    public void FieldDeleteIsRejectedOutsideAMerge()
    {
        Assert.ThrowsAsync<ArgumentException>(() => _store.SetAsync(TasksPath, Fields(("status", FieldDelete.Value)), SetMode.Overwrite));
    }

    [TestCase("tasks")]
    [TestCase("a//b/c")]
    [TestCase("/a/b")]
    public void PathThatIsNotADocumentIsRejected(string path)
    {
        Assert.ThrowsAsync<ArgumentException>(() => _store.GetAsync(path));
    }

    [Test]
    public async Task CreateWritesOnlyWhenTheDocumentIsAbsent()
    {
        Assert.That(await _store.CreateAsync(ChunkPath, Fields(("status", "PENDING"))), Is.True);
        Assert.That(await _store.CreateAsync(ChunkPath, Fields(("status", "DONE"))), Is.False);

        Assert.That((await _store.GetAsync(ChunkPath))!.GetString("status"), Is.EqualTo("PENDING"));
    }

    [Test]
    public async Task DeleteRemovesTheDocumentAndAMissingOneIsFine()
    {
        await _store.SetAsync(ChunkPath, Fields(("status", "DONE")), SetMode.Overwrite);

        await _store.DeleteAsync(ChunkPath);
        await _store.DeleteAsync(ChunkPath);

        Assert.That(await _store.GetAsync(ChunkPath), Is.Null);
    }

    [Test]
    public async Task EveryValueTypeReadsBackAsTheTypeItWasWrittenAs()
    {
        var uploaded = new DateTimeOffset(2026, 3, 4, 5, 6, 7, 891, TimeSpan.FromHours(2)).AddTicks(2345);
        await _store.SetAsync(MetadataPath, Fields(
            ("whole", 5L),
            ("fromInt", 7),
            ("real", 5.0),
            ("fraction", 0.1),
            ("huge", long.MaxValue),
            ("notANumber", double.NaN),
            ("flag", true),
            ("nothing", null),
            ("text", "ünïcode \"quoted\""),
            ("uploaded", uploaded),
            ("bytes", new byte[] { 0, 1, 255 }),
            ("objects", new List<object?> { "a.jpg", 2L, null, new List<object?> { 1.5 } }),
            ("nested", new Dictionary<string, object?> { ["z"] = 1L, ["a"] = new Dictionary<string, object?> { ["deep"] = uploaded } })),
            SetMode.Overwrite);

        var document = (await _store.GetAsync(MetadataPath))!;

        Assert.That(document["whole"], Is.TypeOf<long>().And.EqualTo(5L));
        Assert.That(document["fromInt"], Is.TypeOf<long>().And.EqualTo(7L));
        Assert.That(document["real"], Is.TypeOf<double>().And.EqualTo(5.0));
        Assert.That(document["fraction"], Is.EqualTo(0.1));
        Assert.That(document["huge"], Is.EqualTo(long.MaxValue));
        Assert.That(double.IsNaN((double)document["notANumber"]!), Is.True);
        Assert.That(document["flag"], Is.True);
        Assert.That(document.Fields.ContainsKey("nothing"), Is.True);
        Assert.That(document["nothing"], Is.Null);
        Assert.That(document["text"], Is.EqualTo("ünïcode \"quoted\""));
        Assert.That(document["uploaded"], Is.TypeOf<DateTimeOffset>());
        Assert.That(((DateTimeOffset)document["uploaded"]!).UtcTicks, Is.EqualTo(uploaded.UtcTicks));
        Assert.That(document["bytes"], Is.EqualTo(new byte[] { 0, 1, 255 }));
        var objects = (IReadOnlyList<object?>)document["objects"]!;
        Assert.That(objects[0], Is.EqualTo("a.jpg"));
        Assert.That(objects[1], Is.TypeOf<long>());
        Assert.That(objects[2], Is.Null);
        Assert.That(((IReadOnlyList<object?>)objects[3]!)[0], Is.TypeOf<double>().And.EqualTo(1.5));
        var nested = (IReadOnlyDictionary<string, object?>)document["nested"]!;
        Assert.That(nested["z"], Is.TypeOf<long>());
        Assert.That(((IReadOnlyDictionary<string, object?>)nested["a"]!)["deep"], Is.EqualTo(uploaded));
    }

    [Test]
    public void UnsupportedValueIsRejectedNamingTheField()
    {
        var exception = Assert.ThrowsAsync<ArgumentException>(() =>
            _store.SetAsync(MetadataPath, Fields(("nested", new Dictionary<string, object?> { ["when"] = Guid.NewGuid() })), SetMode.Overwrite));

        Assert.That(exception!.Message, Does.Contain("nested.when"));
    }

    [Test]
    public async Task SnapshotsCannotBeChangedAndDoNotFollowTheCallersDictionary()
    {
        var list = new List<object?> { "a.jpg" };
        var fields = new Dictionary<string, object?> { ["objects"] = list };
        await _store.SetAsync(ChunkPath, fields, SetMode.Overwrite);
        list.Add("b.jpg");
        fields["extra"] = 1L;

        var document = (await _store.GetAsync(ChunkPath))!;

        Assert.That(document["objects"], Is.EqualTo(new[] { "a.jpg" }));
        Assert.That(document.Fields.ContainsKey("extra"), Is.False);
        Assert.That(() => ((IDictionary<string, object?>)document.Fields)["x"] = 1L, Throws.InstanceOf<NotSupportedException>());
        Assert.That(() => ((IList<object?>)document["objects"]!).Add("c.jpg"), Throws.InstanceOf<NotSupportedException>());
    }

    [Test]
    public async Task UpdateTimeIncreasesOnEveryChangeEvenWhenTheClockStandsStillAndNotOnANoOp()
    {
        await _store.SetAsync(TasksPath, Fields(("processedLength", 1L)), SetMode.Overwrite);
        var first = (await _store.GetAsync(TasksPath))!.UpdateTime;
        await _store.SetAsync(TasksPath, Fields(("processedLength", 2L)), SetMode.Overwrite);
        var second = (await _store.GetAsync(TasksPath))!.UpdateTime;
        await _store.SetAsync(TasksPath, Fields(("processedLength", 2L)), SetMode.Merge);
        var afterNoOp = (await _store.GetAsync(TasksPath))!.UpdateTime;

        Assert.That(second!.Value, Is.GreaterThan(first!.Value));
        Assert.That(afterNoOp, Is.EqualTo(second));
    }

    [Test]
    public async Task ConcurrentIncrementTransactionsLoseNoUpdate()
    {
        await _store.SetAsync(TasksPath, Fields(("processedLength", 0L)), SetMode.Overwrite);

        await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(() => _store.RunTransactionAsync(async (transaction, cancellationToken) =>
        {
            var current = await transaction.GetAsync(TasksPath, cancellationToken);
            await Task.Yield(); // give the others every chance to interleave
            var next = current!.GetInt64("processedLength")!.Value + 1;
            transaction.Set(TasksPath, Fields(("processedLength", next)), SetMode.Merge);
            return next;
        }))));

        Assert.That((await _store.GetAsync(TasksPath))!.GetInt64("processedLength"), Is.EqualTo(50));
    }

    [Test]
    public async Task TransactionWhoseBodyThrowsWritesNothing()
    {
        await _store.SetAsync(TasksPath, Fields(("status", "PENDING")), SetMode.Overwrite);

        Assert.ThrowsAsync<InvalidOperationException>(() => _store.RunTransactionAsync<bool>((transaction, _) =>
        {
            transaction.Set(TasksPath, Fields(("status", "DONE")), SetMode.Overwrite);
            transaction.Delete(ChunkPath);
            throw new InvalidOperationException("body failed");
        }));

        Assert.That((await _store.GetAsync(TasksPath))!.GetString("status"), Is.EqualTo("PENDING"));
    }

    [Test]
    public void TransactionRejectsAReadAfterAWrite()
    {
        Assert.ThrowsAsync<InvalidOperationException>(() => _store.RunTransactionAsync(async (transaction, cancellationToken) =>
        {
            transaction.Set(TasksPath, Fields(("status", "DONE")), SetMode.Overwrite);
            return await transaction.GetAsync(ChunkPath, cancellationToken);
        }));
    }

    [Test]
    public void PlainWriteInsideATransactionBodyFailsInsteadOfDeadlocking()
    {
        Assert.ThrowsAsync<InvalidOperationException>(() => _store.RunTransactionAsync(async (_, cancellationToken) =>
        {
            await _store.SetAsync(TasksPath, Fields(("status", "DONE")), SetMode.Overwrite, cancellationToken);
            return true;
        }));
    }

    [Test]
    public async Task OnlyARealChangeOfAWatchedDocumentThatExistedBeforeAndAfterRaisesAnEvent()
    {
        await _store.SetAsync(TasksPath, Fields(("status", "PENDING")), SetMode.Overwrite); // created: no event
        await _store.SetAsync(ChunkPath, Fields(("status", "PENDING")), SetMode.Overwrite); // not watched
        await _store.SetAsync(ChunkPath, Fields(("status", "DONE")), SetMode.Overwrite); // not watched
        await _store.SetAsync(TasksPath, Fields(("status", "PENDING")), SetMode.Merge); // unchanged: no event
        await _store.SetAsync(TasksPath, Fields(("status", "DONE")), SetMode.Merge); // the one event
        await _store.SetAsync(MetadataPath, Fields(("status", "INDEX_BUILDING")), SetMode.Overwrite);
        await _store.DeleteAsync(MetadataPath); // deleted: no event

        var changes = await TakeChangesAsync();

        Assert.That(changes, Has.Count.EqualTo(1));
        Assert.That(changes[0].Path, Is.EqualTo(TasksPath));
        Assert.That(changes[0].Before!.GetString("status"), Is.EqualTo("PENDING"));
        Assert.That(changes[0].After!.GetString("status"), Is.EqualTo("DONE"));
        Assert.That(changes[0].After!.UpdateTime, Is.EqualTo((await _store.GetAsync(TasksPath))!.UpdateTime));
        Assert.That(changes[0].Before!.UpdateTime!.Value, Is.LessThan(changes[0].After!.UpdateTime!.Value));
    }

    [Test]
    public async Task TransactionRaisesOneEventPerDocumentWithItsFinalState()
    {
        await _store.SetAsync(TasksPath, Fields(("processedLength", 1L), ("totalLength", 2L)), SetMode.Overwrite);

        await _store.RunTransactionAsync((transaction, _) =>
        {
            transaction.Set(TasksPath, Fields(("processedLength", 2L)), SetMode.Merge);
            transaction.Set(TasksPath, Fields(("status", "DONE")), SetMode.Merge);
            transaction.Set(ChunkPath, Fields(("status", "DONE")), SetMode.Overwrite);
            return Task.FromResult(true);
        });

        var change = (await TakeChangesAsync()).Single();
        Assert.That(change.Before!.Fields, Is.EquivalentTo(Fields(("processedLength", 1L), ("totalLength", 2L))));
        Assert.That(change.After!.Fields, Is.EquivalentTo(Fields(("processedLength", 2L), ("totalLength", 2L), ("status", "DONE"))));
    }

    [Test]
    public async Task ChangeEventKeepsTypedValues()
    {
        var when = new DateTimeOffset(2026, 5, 6, 7, 8, 9, TimeSpan.Zero);
        await _store.SetAsync(TasksPath, Fields(("count", 1L), ("ratio", 1.0), ("when", when)), SetMode.Overwrite);
        await _store.SetAsync(TasksPath, Fields(("count", 2L), ("list", new List<object?> { 3L, 3.5 })), SetMode.Merge);

        var change = (await TakeChangesAsync()).Single();

        Assert.That(change.Before!["count"], Is.TypeOf<long>().And.EqualTo(1L));
        Assert.That(change.After!["ratio"], Is.TypeOf<double>().And.EqualTo(1.0));
        Assert.That(change.After!["when"], Is.EqualTo(when));
        Assert.That((IReadOnlyList<object?>)change.After!["list"]!, Is.EqualTo(new object?[] { 3L, 3.5 }));
    }

    [Test]
    public async Task ChangeEventIsDeliveredThroughTheDispatcher()
    {
        var received = new TaskCompletionSource<DocumentChange>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var dispatcher = new TaskQueueDispatcher(
            _queue,
            [new TaskQueueHandler(LocalEventQueues.DocumentUpdated, (task, _) =>
            {
                received.TrySetResult(SqliteDocumentStore.DecodeChange(task.Payload));
                return Task.CompletedTask;
            })],
            _files.Clock,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<TaskQueueDispatcher>.Instance);
        await dispatcher.StartAsync(CancellationToken.None);
        try
        {
            await _store.SetAsync(MetadataPath, Fields(("status", "INDEX_BUILDING")), SetMode.Overwrite);
            await _store.SetAsync(MetadataPath, Fields(("status", "INDEX_DEPLOYING")), SetMode.Merge);

            using var hangGuard = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var change = await received.Task.WaitAsync(hangGuard.Token);
            Assert.That(change.Path, Is.EqualTo(MetadataPath));
            Assert.That(change.After!.GetString("status"), Is.EqualTo("INDEX_DEPLOYING"));
        }
        finally
        {
            await dispatcher.StopAsync(CancellationToken.None);
        }
    }

    [Test]
    public async Task DocumentsAndTheirUpdateTimesSurviveReopeningTheFile()
    {
        await _store.SetAsync(TasksPath, Fields(("totalLength", 4L), ("status", "PROCESSING")), SetMode.Overwrite);
        var before = (await _store.GetAsync(TasksPath))!;

        var reopened = NewStore(_files.Reopen());
        var after = (await reopened.GetAsync(TasksPath))!;
        await reopened.SetAsync(TasksPath, Fields(("status", "DONE")), SetMode.Merge);

        Assert.That(after.Fields, Is.EquivalentTo(before.Fields));
        Assert.That(after.UpdateTime, Is.EqualTo(before.UpdateTime));
        Assert.That((await reopened.GetAsync(TasksPath))!.UpdateTime!.Value, Is.GreaterThan(before.UpdateTime!.Value), "the clock stood still across the restart");
    }

    [Test]
    public async Task DatabaseFileIsInWalModeAndItsDirectoryWasCreated()
    {
        await _store.SetAsync(TasksPath, Fields(("status", "PENDING")), SetMode.Overwrite);

        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _files.FilePath, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode;";

        Assert.That(command.ExecuteScalar(), Is.EqualTo("wal"));
    }

    [Test]
    public async Task ServiceRegistrationSharesOneDatabaseBetweenStoreAndQueue()
    {
        var services = new ServiceCollection()
            .AddLogging()
            .AddSingleton<TimeProvider>(_files.Clock)
            .AddLocalDocumentsAndTasks(Path.Combine(_files.Directory, "services", "local.db"), [TasksPath]);
        await using var provider = services.BuildServiceProvider();
        var documents = provider.GetRequiredService<IDocumentStore>();

        await documents.SetAsync(TasksPath, Fields(("status", "PENDING")), SetMode.Overwrite);
        await documents.SetAsync(TasksPath, Fields(("status", "DONE")), SetMode.Overwrite);

        var stats = await provider.GetRequiredService<SqliteTaskQueue>().GetStatsAsync();
        Assert.That(stats.For(LocalEventQueues.DocumentUpdated).PendingDue, Is.EqualTo(1));
        Assert.That(provider.GetRequiredService<ITaskQueue>(), Is.SameAs(provider.GetRequiredService<SqliteTaskQueue>()));
        Assert.That(provider.GetServices<IHostedService>().Single(), Is.SameAs(provider.GetRequiredService<TaskQueueDispatcher>()));
    }

    private SqliteDocumentStore NewStore(LocalDatabase database)
    {
        _queue = _files.NewQueue(database);
        return new SqliteDocumentStore(database, _queue, [TasksPath, MetadataPath], _files.Clock);
    }

    /// <summary>Leases every queued change event (no dispatcher needed) and decodes it.</summary>
    private async Task<IReadOnlyList<DocumentChange>> TakeChangesAsync()
    {
        var batch = await _queue.LeaseDueAsync(LocalEventQueues.DocumentUpdated, 100, TimeSpan.FromMinutes(1), RetryPolicy.Default, LeaseOwner.Current, CancellationToken.None);
        return batch.Leased.Select(lease => SqliteDocumentStore.DecodeChange(lease.Task.Payload)).ToArray();
    }

    private static Dictionary<string, object?> Fields(params (string Name, object? Value)[] fields) =>
        fields.ToDictionary(field => field.Name, field => field.Value, StringComparer.Ordinal);
}
