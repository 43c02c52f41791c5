using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Emulator;
using ReverseImageSearch.Tests.Embedding;
using ReverseImageSearch.Tests.Functions;
using SkiaSharp;

namespace ReverseImageSearch.Tests.Faults;

/// <summary>
/// An images folder and a data folder that real emulator processes (<c>ris-emulator index</c>) run on, are
/// killed with SIGKILL and restarted; afterwards the data folder is read back in-process to check the outcome.
/// </summary>
internal sealed class FaultBed : IDisposable
{
    public FaultBed()
    {
        Root = Directory.CreateTempSubdirectory("ris-faults-").FullName;
        Images = Directory.CreateDirectory(Path.Combine(Root, "images")).FullName;
        Data = Path.Combine(Root, "data");
    }

    public string Root { get; }

    public string Images { get; }

    public string Data { get; }

    public string StateFile => Path.Combine(Data, "state.sqlite");

    /// <summary>Small chunks, so a backfill of a few hundred images has many chunks in flight to interrupt.</summary>
    public Dictionary<string, string> Environment { get; } = new() { ["BATCH_SIZE"] = "8" };

    /// <summary>Writes <paramref name="count"/> distinct small JPEGs named img-000.jpg, img-001.jpg, ...</summary>
    public void WriteImages(int count, int first = 0)
    {
        for (var i = first; i < first + count; i++)
        {
            WriteImage($"img-{i:D3}.jpg", variant: i);
        }
    }

    public void WriteImage(string name, int variant)
    {
        using var bitmap = TestImages.DrawScene(160, 120, variant);
        var path = Path.Combine(Images, name);
        var temporary = Path.Combine(Images, "." + name + ".tmp"); // Hidden: not an object until renamed.
        File.WriteAllBytes(temporary, TestImages.Encode(bitmap, SKEncodedImageFormat.Jpeg));
        File.Move(temporary, path, overwrite: true);
    }

    public EmulatorProcess StartIndex() => EmulatorProcess.Start(["index", "--images", Images, "--data", Data], Environment);

    /// <summary>Runs <c>index</c> to its end, or kills it after <paramref name="timeout"/>; null when it timed out.</summary>
    public async Task<(EmulatorProcess Process, TimeSpan Took)?> RunIndexAsync(TimeSpan timeout)
    {
        var started = Stopwatch.StartNew();
        var process = StartIndex();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
            return (process, started.Elapsed);
        }
        catch (OperationCanceledException)
        {
            TestContext.Out.WriteLine($"index did not finish within {timeout}: {process.Output}");
            process.Dispose();
            return null;
        }
    }

    /// <summary>Tasks of <paramref name="queue"/> (any queue when null) currently leased, read from the state file.</summary>
    public long LeasedTasks(string? queue = null) =>
        Scalar("SELECT COUNT(*) FROM tasks WHERE state = 'leased' AND ($queue IS NULL OR queue = $queue)", ("$queue", queue));

    /// <summary>Reads one number from the state file; 0 while it does not exist yet or is locked.</summary>
    public long Scalar(string sql, params (string Name, object? Value)[] parameters)
    {
        if (!File.Exists(StateFile))
        {
            return 0;
        }

        try
        {
            using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = StateFile, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            foreach (var (name, value) in parameters)
            {
                command.Parameters.AddWithValue(name, value ?? DBNull.Value);
            }

            return command.ExecuteScalar() is long count ? count : 0;
        }
        catch (SqliteException)
        {
            return 0; // Schema not created yet, or the writer holds a lock the reader cannot wait out.
        }
    }

    /// <summary>The rows of a query on the state file, as text; none while it does not exist yet or is locked.</summary>
    public IReadOnlyList<string[]> Rows(string sql)
    {
        var rows = new List<string[]>();
        if (!File.Exists(StateFile))
        {
            return rows;
        }

        try
        {
            using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = StateFile, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                rows.Add([.. Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "" : reader.GetValue(i).ToString() ?? "")]);
            }
        }
        catch (SqliteException)
        {
            // Not created yet, or locked: nothing to see this time.
        }

        return rows;
    }

    /// <summary>What the data folder says after the runs: statuses, counts and the ids the deployed index holds.</summary>
    public async Task<FaultOutcome> ReadOutcomeAsync()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(Environment.Select(e => KeyValuePair.Create(e.Key, (string?)e.Value))).Build();
        services.AddLocalStack(new LocalStackOptions(Images, Data, configuration));
        await using var provider = services.BuildServiceProvider();
        var options = provider.GetRequiredService<ExtensionOptions>();
        var state = provider.GetRequiredService<CoordinationState>();
        var documents = provider.GetRequiredService<IDocumentStore>();
        var tasks = await documents.GetAsync(state.Paths.Tasks, CancellationToken.None);
        var metadata = await documents.GetAsync(state.Paths.Metadata, CancellationToken.None);
        var index = await state.ReadIndexAvailabilityAsync(CancellationToken.None);
        IReadOnlyList<string> ids = [];
        if (index.Deployed is { } deployed)
        {
            var dimensions = (int)(metadata?.GetInt64("outputShape") ?? 0);
            var probe = Enumerable.Repeat(1f / MathF.Sqrt(dimensions), dimensions).ToArray();
            var found = await provider.GetRequiredService<IVectorIndexService>().FindNeighborsAsync(
                deployed.PublicEndpointDomainName, deployed.IndexEndpoint, options.DeployedIndexId,
                [new NeighborQuery("probe", probe)], neighborCount: 100_000, CancellationToken.None);
            ids = found[0].Neighbors.Select(n => n.DatapointId).ToList();
        }

        var md5 = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var name in ImageNames())
        {
            var record = await state.GetDatapointRecordAsync(name, CancellationToken.None);
            md5[name] = record?.Status == DatapointStatus.Indexed ? record.Md5Hash : null;
        }

        return new FaultOutcome(
            metadata?.GetString("status"),
            tasks?.GetString("status"),
            tasks?.GetInt64("totalLength"),
            tasks?.GetInt64("processedLength"),
            metadata?["error"]?.ToString(),
            ids,
            md5);
    }

    public IReadOnlyList<string> ImageNames() =>
        Directory.EnumerateFiles(Images).Select(path => Path.GetFileName(path)).Where(name => !name.StartsWith('.')).Order(StringComparer.Ordinal).ToList();

    /// <summary>Leave the folders behind when disposed, to look at a failed run.</summary>
    public bool Keep { get; set; }

    public void Dispose()
    {
        if (Keep)
        {
            return;
        }

        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A killed process may still be releasing a file; the temp folder is left behind.
        }
    }
}

/// <param name="IndexedIds">The datapoint ids the deployed index holds (empty when none is deployed).</param>
/// <param name="IndexedMd5">Per image of the folder, the MD5 its record says was indexed (null when not indexed).</param>
internal sealed record FaultOutcome(
    string? IndexStatus,
    string? BackfillStatus,
    long? TotalLength,
    long? ProcessedLength,
    string? Error,
    IReadOnlyList<string> IndexedIds,
    IReadOnlyDictionary<string, string?> IndexedMd5);
