using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ReverseImageSearch.Emulator;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>Images that cannot be indexed are visible: in the index command's output and in serve's /api/status.</summary>
[Parallelizable(ParallelScope.None)]
public class EmulatorSkipReportTests
{
    private string _root = null!;
    private string _images = null!;
    private int _good;
    private string[] _bad = null!;

    [SetUp]
    public void SetUp()
    {
        _root = Directory.CreateTempSubdirectory("ris-skips-").FullName;
        _images = SampleImages.EnsureCreated(Path.Combine(_root, "photos"));
        _good = Directory.GetFiles(_images).Length;
        var jpeg = File.ReadAllBytes(Directory.GetFiles(_images, "*.jpg")[0]);

        // A truncated JPEG may still decode (its missing rows grey): only the certain rejections.
        var bad = BadImages.All(jpeg).Where(b => b.Name != "truncated.jpg").ToArray();
        foreach (var (name, bytes) in bad)
        {
            File.WriteAllBytes(Path.Combine(_images, name), bytes);
        }

        _bad = bad.Select(b => b.Name).ToArray();
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    [Test]
    public async Task IndexEndsWithTheCountsAndEverySkippedImageWithItsReason()
    {
        var data = Path.Combine(_root, "data");
        var index = await EmulatorProcess.RunAsync(["index", "--images", _images, "--data", data]);

        Assert.That(index.ExitCode, Is.Zero, index.Output);
        Assert.That(index.StandardOutput, Does.Contain($"Images: {_good} indexed, {_bad.Length} skipped, 0 failed."));
        var lines = index.StandardOutput.Split('\n').Select(l => l.TrimEnd()).ToArray();
        foreach (var name in _bad)
        {
            Assert.That(lines.Where(l => l.StartsWith($"  {name}: ", StringComparison.Ordinal) && l.Length > name.Length + 6), Has.One.Items, $"{name} listed with a reason:\n{index.StandardOutput}");
        }

        var list = Path.Combine(data, "skipped.tsv");
        Assert.That(index.StandardOutput, Does.Contain("Every skipped image with its reason: " + list));
        var rows = File.ReadAllLines(list);
        Assert.That(rows[0], Is.EqualTo("image\treason"));
        Assert.That(rows.Skip(1).Select(r => r.Split('\t')[0]), Is.EquivalentTo(_bad));
        Assert.That(rows.Skip(1).Select(r => r.Split('\t')[1]), Has.All.Not.Empty);
    }

    [Test]
    public async Task ServeStatusCarriesTheCountsTheSkippedImagesAndTheDistanceMeasure()
    {
        var port = EmulatorProcess.FreePort();
        using var serve = EmulatorProcess.Start(["serve", "--images", _images, "--data", Path.Combine(_root, "data"), "--port", port.ToString(CultureInfo.InvariantCulture)]);
        var status = await EmulatorPorts.WaitForStatusAsync(serve, port, TimeSpan.FromSeconds(90));
        var watch = Stopwatch.StartNew();
        while (status.GetProperty("indexStatus").GetString() != "INDEX_DEPLOYED" && watch.Elapsed < TimeSpan.FromSeconds(90))
        {
            await Task.Delay(250);
            status = await EmulatorPorts.WaitForStatusAsync(serve, port, TimeSpan.FromSeconds(10));
        }

        Assert.That(status.GetProperty("indexStatus").GetString(), Is.EqualTo("INDEX_DEPLOYED"), status.ToString);
        var images = status.GetProperty("images");
        Assert.That(images.GetProperty("indexed").GetInt32(), Is.EqualTo(_good), status.ToString);
        Assert.That(images.GetProperty("skipped").GetInt32(), Is.EqualTo(_bad.Length), status.ToString);
        Assert.That(images.GetProperty("failed").GetInt32(), Is.Zero, status.ToString);
        var skipped = status.GetProperty("skipped").EnumerateArray().ToArray();
        Assert.That(skipped.Select(s => s.GetProperty("name").GetString()), Is.EquivalentTo(_bad));
        Assert.That(skipped.Select(s => s.GetProperty("reason").GetString()), Has.All.Not.Empty);
        Assert.That(status.GetProperty("distanceMeasure").GetString(), Is.EqualTo("DOT_PRODUCT_DISTANCE"));
        Assert.That(status.GetProperty("failures").GetArrayLength(), Is.Zero);
    }
}
