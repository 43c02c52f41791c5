using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Emulator;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Local.Storage;
using ReverseImageSearch.Local.Tasks;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>
/// The nine functions on the local adapters in a temporary folder, as the emulator runs them,
/// with short waits so the tests see the whole lifecycle in seconds.
/// </summary>
internal sealed class LocalStackHarness : IAsyncDisposable
{
    private static readonly Lazy<string> SampleSet = new(() =>
        SampleImages.EnsureCreated(Path.Combine(Path.GetTempPath(), "ris-test-samples-" + Environment.ProcessId)));

    private readonly Dictionary<string, string?> _settings;
    private readonly Action<IServiceCollection>? _overrides;
    private readonly TimeSpan? _buildDelay;
    private IHost? _host;

    private LocalStackHarness(string root, Dictionary<string, string?> settings, Action<IServiceCollection>? overrides, TimeSpan? buildDelay)
    {
        Root = root;
        _settings = settings;
        _overrides = overrides;
        _buildDelay = buildDelay;
        Directory.CreateDirectory(ImagesFolder);
    }

    public string Root { get; }

    /// <summary>The parameters the stack starts with; a change takes effect at the next <see cref="RestartAsync"/>.</summary>
    public IDictionary<string, string?> Settings => _settings;

    public string ImagesFolder => Path.Combine(Root, "images");

    public string DataFolder => Path.Combine(Root, "data");

    public IServiceProvider Services => _host?.Services ?? throw new InvalidOperationException("Not started.");

    public ExtensionOptions Options => Services.GetRequiredService<ExtensionOptions>();

    public CoordinationState State => Services.GetRequiredService<CoordinationState>();

    public IDocumentStore Documents => Services.GetRequiredService<IDocumentStore>();

    /// <summary>The tasks document as stored: its fields as Firestore holds them.</summary>
    public Task<DocumentSnapshot?> TasksDocumentAsync() => Documents.GetAsync(State.Paths.Tasks);

    /// <summary>The metadata document as stored: its fields as Firestore holds them.</summary>
    public Task<DocumentSnapshot?> MetadataDocumentAsync() => Documents.GetAsync(State.Paths.Metadata);

    /// <summary>Names of the generated sample images (distinct synthetic scenes).</summary>
    public static IReadOnlyList<string> SampleNames { get; } =
        Directory.GetFiles(SampleSet.Value).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    public static byte[] SampleBytes(string name) => File.ReadAllBytes(Path.Combine(SampleSet.Value, name));

    /// <summary>A harness whose images folder holds the first <paramref name="imageCount"/> sample images.</summary>
    public static LocalStackHarness Create(
        int imageCount,
        IReadOnlyDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? overrides = null,
        TimeSpan? buildDelay = null)
    {
        var all = new Dictionary<string, string?> { ["PENDING_WRITE_RETRY_SECONDS"] = "1", ["BATCH_SIZE"] = "5" };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        var harness = new LocalStackHarness(Path.Combine(Path.GetTempPath(), "ris-stack-" + Guid.NewGuid().ToString("N")), all, overrides, buildDelay);
        foreach (var name in SampleNames.Take(imageCount))
        {
            harness.AddImage(name, SampleBytes(name));
        }

        return harness;
    }

    public void AddImage(string name, byte[] content)
    {
        var path = Path.Combine(ImagesFolder, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
    }

    /// <summary>Builds the stack; with <paramref name="run"/> its dispatcher, watcher and install step start too.</summary>
    public async Task<LocalStackHarness> StartAsync(bool run = true)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = true });
        builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(_settings).Build();
        builder.Services.AddLocalStack(new LocalStackOptions(
            ImagesFolder,
            DataFolder,
            configuration,
            new LocalBucketWatcherOptions
            {
                DebounceInterval = TimeSpan.FromMilliseconds(100),
                SafetyScanInterval = TimeSpan.FromSeconds(2),
                StabilityInterval = TimeSpan.FromMilliseconds(50),
                QuietPeriod = TimeSpan.FromMilliseconds(300),
            },
            _buildDelay,
            new TaskQueueDispatcherOptions { PollInterval = TimeSpan.FromMilliseconds(200) }));
        _overrides?.Invoke(builder.Services);
        _host = builder.Build();
        if (run)
        {
            await _host.StartAsync();
        }

        return this;
    }

    /// <summary>Stops the stack and builds a new one over the same folders, as a process restart would.</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        await StartAsync();
    }

    public async Task StopAsync()
    {
        if (_host is not null)
        {
            await _host.StopAsync();
            _host.Dispose();
            _host = null;
        }
    }

    public async Task<DeployedIndex> WaitUntilDeployedAsync(TimeSpan? timeout = null)
    {
        DeployedIndex? deployed = null;
        await WaitUntilAsync(async () => (deployed = (await State.ReadIndexAvailabilityAsync(CancellationToken.None)).Deployed) is not null, timeout ?? TimeSpan.FromSeconds(90), "the index to be deployed");
        return deployed!;
    }

    /// <summary>Waits until no task of any queue is due, running or scheduled.</summary>
    public Task WaitUntilQuietAsync(TimeSpan? timeout = null) =>
        WaitUntilAsync(async () =>
        {
            var stats = await Services.GetRequiredService<SqliteTaskQueue>().GetStatsAsync();
            return stats.Outstanding == 0;
        }, timeout ?? TimeSpan.FromSeconds(60), "all queues to empty");

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out after {timeout.TotalSeconds} s waiting for {what}.");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Calls queryIndex as a signed-in user; returns the callable's result as the protocol serialises it.</summary>
    public async Task<JsonElement> CallQueryAsync(JsonNode data, CallerIdentity? caller = null)
    {
        var request = new CallableRequest(JsonSerializer.SerializeToElement(data, CoreJson.Options), caller ?? new CallerIdentity("test-user", "anonymous"));
        var result = await Services.GetRequiredService<QueryIndex>().HandleAsync(request, CancellationToken.None);
        return JsonSerializer.SerializeToElement(result, result!.GetType(), CoreJson.Options);
    }

    /// <summary>The nearest stored images of each query image, nearest first.</summary>
    public async Task<IReadOnlyList<IReadOnlyList<(string Id, double Distance)>>> QueryAsync(int neighbors, params byte[][] images)
    {
        var result = await CallQueryAsync(new JsonObject
        {
            ["query"] = new JsonArray(images.Select(i => (JsonNode)Convert.ToBase64String(i)).ToArray()),
            ["neighbours"] = neighbors,
        });
        return result.GetProperty("data").GetProperty("nearestNeighbors").EnumerateArray()
            .Select(entry => (IReadOnlyList<(string, double)>)(entry.TryGetProperty("neighbors", out var n)
                ? n.EnumerateArray().Select(x => (x.GetProperty("datapoint").GetProperty("datapointId").GetString()!, x.GetProperty("distance").GetDouble())).ToArray()
                : []))
            .ToArray();
    }

    public async Task<string?> NearestAsync(byte[] image) => (await QueryAsync(1, image))[0].Select(n => n.Id).FirstOrDefault();

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
