using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ReverseImageSearch.Emulator;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>The emulator as a newcomer runs it: its own process, its commands, its HTTP callable.</summary>
[Parallelizable(ParallelScope.None)]
public class EmulatorProcessTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("ris-emulator-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    [Test]
    public async Task ServeAnswersACallableQueryOnTheSampleSetWithinSixtySecondsOfStart()
    {
        var port = EmulatorProcess.FreePort();
        var data = Path.Combine(_root, "data");
        var started = Stopwatch.StartNew();
        using var serve = EmulatorProcess.Start(["serve", "--data", data, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)]);

        // The sample set is generated into the data folder; query with one of its images.
        var sample = Path.Combine(data, "sample-images", "circle-blue.jpg");
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var path = "/demo-reverse-image-search/us-central1/ext-storage-reverse-image-search-queryIndex";
        JsonElement? answer = null;
        while (answer is null && started.Elapsed < TimeSpan.FromSeconds(60))
        {
            Assert.That(serve.HasExited, Is.False, () => "serve exited early: " + serve.Output);
            if (File.Exists(sample))
            {
                answer = await TryQueryAsync(http, path, await File.ReadAllBytesAsync(sample));
            }

            if (answer is null)
            {
                await Task.Delay(250);
            }
        }

        Assert.That(answer, Is.Not.Null, () => "no answer within 60 s: " + serve.Output);
        TestContext.Out.WriteLine($"first answer after {started.Elapsed.TotalSeconds:F1} s");
        var first = answer!.Value.GetProperty("result").GetProperty("data").GetProperty("nearestNeighbors")[0].GetProperty("neighbors")[0];
        Assert.That(first.GetProperty("datapoint").GetProperty("datapointId").GetString(), Is.EqualTo("circle-blue.jpg"));

        var page = await http.GetStringAsync("/");
        Assert.That(page, Does.Contain("<title>Reverse image search"));
    }

    [Test]
    public async Task IndexThenQueryFindsEveryUnmodifiedImageAsItsOwnNearestNeighbor()
    {
        var images = SampleImages.EnsureCreated(Path.Combine(_root, "photos"));
        var data = Path.Combine(_root, "data");

        var index = await EmulatorProcess.RunAsync(["index", "--images", images, "--data", data]);
        Assert.That(index.ExitCode, Is.Zero, index.Output);

        var query = await EmulatorProcess.RunAsync(["query", "--data", data, "--format", "tsv", "--neighbors", "3", images]);
        Assert.That(query.ExitCode, Is.Zero, query.Output);
        var lines = query.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines[0], Is.EqualTo("query\trank\tneighbor\tdistance"));
        var rows = lines.Skip(1).Select(line => line.Split('\t')).ToArray();
        Assert.That(rows, Has.Length.EqualTo(3 * Directory.GetFiles(images).Length));
        foreach (var perQuery in rows.GroupBy(columns => columns[0]))
        {
            var neighbors = perQuery.ToArray();
            Assert.That(neighbors.Select(columns => columns[1]), Is.EqualTo(new[] { "1", "2", "3" }), perQuery.Key);
            Assert.That(neighbors[0][2], Is.EqualTo(perQuery.Key), "an unmodified image is its own nearest neighbour");

            // DOT_PRODUCT_DISTANCE: the dot product of unit vectors, 1 for the image itself and falling with rank.
            var distances = neighbors.Select(columns => double.Parse(columns[3], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            Assert.That(distances[0], Is.EqualTo(1).Within(1e-4), perQuery.Key);
            Assert.That(distances, Is.Ordered.Descending, perQuery.Key);
        }

        // More like a stored image: its stored vector, itself left out, so the image's own ranks 2 and 3 come first.
        var stored = rows[0][0];
        var byPath = await EmulatorProcess.RunAsync(["query", "--data", data, "--neighbors", "2", "--path", stored, "--path", "no/such.jpg"]);
        Assert.That(byPath.ExitCode, Is.EqualTo(1), "one of the stored names is unknown");
        Assert.That(byPath.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(line => string.Join('\t', line.Split('\t')[..3])),
            Is.EqualTo(rows.Where(r => r[0] == stored).Skip(1).Select(r => string.Join('\t', stored, int.Parse(r[1], System.Globalization.CultureInfo.InvariantCulture) - 1, r[2]))));
        Assert.That(byPath.StandardError, Does.Contain("no/such.jpg: Not in the index"));
    }

    [Test]
    public async Task IndexOfAnEmptyFolderFailsSayingWhy()
    {
        var empty = Directory.CreateDirectory(Path.Combine(_root, "empty")).FullName;
        var index = await EmulatorProcess.RunAsync(["index", "--images", empty, "--data", Path.Combine(_root, "data")]);
        Assert.That(index.ExitCode, Is.Not.Zero);
        Assert.That(index.Output, Does.Contain("No images found"));
    }

    [Test]
    public async Task AnInvalidParameterStopsWithOneLineNamingIt()
    {
        var result = await EmulatorProcess.RunAsync(
            ["index", "--images", _root, "--data", Path.Combine(_root, "data")],
            new Dictionary<string, string> { ["DISTANCE_MEASURE"] = "MANHATTAN" });
        Assert.That(result.ExitCode, Is.EqualTo(1));
        Assert.That(result.StandardError.Trim(), Is.EqualTo(
            "Invalid configuration: DISTANCE_MEASURE='MANHATTAN' must be one of SQUARED_L2_DISTANCE, L1_DISTANCE, COSINE_DISTANCE, DOT_PRODUCT_DISTANCE"));
    }

    private static async Task<JsonElement?> TryQueryAsync(HttpClient http, string path, byte[] image)
    {
        try
        {
            using var response = await http.PostAsJsonAsync(path, new { data = new { query = new[] { Convert.ToBase64String(image) }, neighbours = 3 } });
            return response.StatusCode == HttpStatusCode.OK ? await response.Content.ReadFromJsonAsync<JsonElement>() : null;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }
}
