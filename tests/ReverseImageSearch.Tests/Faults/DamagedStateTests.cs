using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using ReverseImageSearch.Tests.Functions;

namespace ReverseImageSearch.Tests.Faults;

/// <summary>
/// The state a real emulator process finds in its data folder after the fact (issue 11 item 4): a folder it may
/// only read, and a state file damaged under a running <c>serve</c>.
/// </summary>
[Parallelizable(ParallelScope.None)]
public sealed class DamagedStateTests
{
    [TestCase("vertex")]
    [TestCase("firestore")]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task QueryAnswersFromADataFolderItCannotWrite(string backend)
    {
        using var bed = new FaultBed();
        bed.Environment["INDEX_BACKEND"] = backend;
        bed.WriteImages(3);
        var indexed = await bed.RunIndexAsync(TimeSpan.FromMinutes(2));
        Assert.That(indexed?.Process.ExitCode, Is.Zero, () => indexed?.Process.Output ?? "index timed out");
        indexed!.Value.Process.Dispose();
        var before = Snapshot(bed.Data);

        SetWritable(bed.Data, writable: false);
        try
        {
            using var query = await EmulatorProcess.WaitAsync(StartWithoutWriteAccess(
                ["query", "--data", bed.Data, "--neighbors", "1", Path.Combine(bed.Images, "img-001.jpg")], bed.Environment));

            Assert.That(query.ExitCode, Is.Zero, query.Output);
            Assert.That(query.StandardOutput, Does.Contain("img-001.jpg\t1\timg-001.jpg\t"), query.Output);
        }
        finally
        {
            SetWritable(bed.Data, writable: true);
        }

        Assert.That(Snapshot(bed.Data), Is.EqualTo(before), "the query changed nothing in the data folder");
    }

    [Test]
    public async Task ServeOverADamagedTaskTableReportsUnhealthyAndHowToRecover()
    {
        using var bed = new FaultBed();
        bed.WriteImages(3);
        var indexed = await bed.RunIndexAsync(TimeSpan.FromMinutes(2));
        Assert.That(indexed?.Process.ExitCode, Is.Zero, () => indexed?.Process.Output ?? "index timed out");
        indexed!.Value.Process.Dispose();
        DamageTable(bed.StateFile, "tasks");

        var port = EmulatorProcess.FreePort();
        using var serve = EmulatorProcess.Start(["serve", "--images", bed.Images, "--data", bed.Data, "--port", port.ToString(CultureInfo.InvariantCulture)], bed.Environment);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };

        // The dispatcher reads the task table as soon as it starts, and again every poll interval.
        var clock = Stopwatch.StartNew();
        HttpResponseMessage? health = null;
        while (clock.Elapsed < TimeSpan.FromSeconds(60) && !serve.HasExited)
        {
            health?.Dispose();
            health = await TryGetAsync(http, "/health");
            if (health?.StatusCode == HttpStatusCode.ServiceUnavailable)
            {
                break;
            }

            await Task.Delay(250);
        }

        using (health)
        {
            Assert.That(health?.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable), () => "health never said unhealthy: " + serve.Output);
            var body = await health!.Content.ReadAsStringAsync();
            Assert.That(body, Does.Contain(bed.StateFile).And.Contain("malformed").And.Contain("aside"), body);
        }

        using var status = JsonDocument.Parse(await http.GetStringAsync(new Uri("/api/status", UriKind.Relative)));
        var reported = status.RootElement.GetProperty("health");
        Assert.That(reported.GetProperty("status").GetString(), Is.EqualTo("Unhealthy"), status.RootElement.ToString());
        Assert.That(reported.GetProperty("problem").GetString(), Does.Contain(bed.StateFile).And.Contain("aside"));

        // Said once, in one line, not a stack trace every poll interval.
        await Task.Delay(TimeSpan.FromSeconds(6));
        var output = serve.Output;
        Assert.That(output, Does.Not.Contain("   at "), output);
        Assert.That(output.Split('\n').Count(line => line.Contains(bed.StateFile, StringComparison.Ordinal)), Is.EqualTo(1), output);
    }

    /// <summary>Overwrites every page of <paramref name="table"/>'s b-trees (rows and indexes) with junk; the schema page stays valid.</summary>
    internal static void DamageTable(string stateFile, string table)
    {
        var pages = new List<long>();
        long pageSize;
        using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = stateFile, Pooling = false }.ToString()))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;";
            command.ExecuteNonQuery();
            command.CommandText = "PRAGMA page_size";
            pageSize = (long)command.ExecuteScalar()!;
            command.CommandText = $"SELECT rootpage FROM sqlite_master WHERE tbl_name = '{table}' AND rootpage > 0";
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                pages.Add(reader.GetInt64(0));
            }

            // Leaves WAL mode recorded in the file, as the emulator keeps it.
            reader.Close();
            command.CommandText = "PRAGMA journal_mode = WAL;";
            command.ExecuteNonQuery();
        }

        Assert.That(pages, Is.Not.Empty);
        using var file = new FileStream(stateFile, FileMode.Open, FileAccess.Write);
        foreach (var page in pages)
        {
            file.Position = (page - 1) * pageSize;
            file.Write(Enumerable.Repeat((byte)0x5A, (int)pageSize).ToArray());
        }
    }

    /// <summary>
    /// Starts the emulator unable to write what the permission bits forbid. As a user other than root that is
    /// every process; root is started without the capabilities that override the bits (setpriv).
    /// </summary>
    private static EmulatorProcess StartWithoutWriteAccess(IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment)
    {
        if (Environment.UserName != "root")
        {
            return EmulatorProcess.Start(arguments, environment);
        }

        return EmulatorProcess.Start("setpriv", ["--bounding-set=-dac_override,-dac_read_search,-fowner", "dotnet", EmulatorProcess.Dll, .. arguments], environment);
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void SetWritable(string folder, bool writable)
    {
        var entries = Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories).Append(folder);
        foreach (var entry in entries)
        {
            var mode = File.GetUnixFileMode(entry);
            var write = UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;
            File.SetUnixFileMode(entry, writable ? mode | UnixFileMode.UserWrite : mode & ~write);
        }
    }

    private static Dictionary<string, string> Snapshot(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).ToDictionary(
            path => Path.GetRelativePath(folder, path),
            path => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path))));

    private static async Task<HttpResponseMessage?> TryGetAsync(HttpClient http, string path)
    {
        try
        {
            return await http.GetAsync(new Uri(path, UriKind.Relative));
        }
        catch (HttpRequestException)
        {
            return null; // Not listening yet.
        }
    }
}
