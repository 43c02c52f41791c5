using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core;
using ReverseImageSearch.Gcp.Hosting;
using ReverseImageSearch.Tests.Functions;
using ReverseImageSearch.Tests.Gcp.Hosting;

namespace ReverseImageSearch.Tests.Operations;

/// <summary>Health, metrics and traced logs (issue 13 item 5), from real handler runs and real hosts.</summary>
[Parallelizable(ParallelScope.None)]
public sealed partial class TelemetryTests
{
    private const string CallablePath = "/demo-reverse-image-search/us-central1/ext-storage-reverse-image-search-queryIndex";

    [Test]
    public async Task HandlersRecordEmbeddingTimeImagesIndexedAndSkippedAndQueryLatency()
    {
        var measurements = new ConcurrentBag<(string Instrument, double Value, string? Reason)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == Telemetry.Name)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => measurements.Add((instrument.Name, value, ReasonOf(tags))));
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => measurements.Add((instrument.Name, value, ReasonOf(tags))));
        listener.Start();

        await using var stack = LocalStackHarness.Create(imageCount: 4);
        stack.AddImage("notes.jpg", Encoding.UTF8.GetBytes("not a picture"));
        await stack.StartAsync();
        await stack.WaitUntilDeployedAsync();
        var first = LocalStackHarness.SampleNames[0];
        Assert.That(await stack.NearestAsync(LocalStackHarness.SampleBytes(first)), Is.EqualTo(first));
        listener.RecordObservableInstruments();

        double Sum(string name, string? reason = null) => measurements.Where(m => m.Instrument == name && (reason is null || m.Reason == reason)).Sum(m => m.Value);
        int Count(string name) => measurements.Count(m => m.Instrument == name);
        Assert.Multiple(() =>
        {
            Assert.That(Sum("ris.images.indexed"), Is.GreaterThanOrEqualTo(4));
            Assert.That(Sum("ris.images.skipped", "unsupported_format"), Is.GreaterThanOrEqualTo(1));
            Assert.That(Count("ris.embedding.duration"), Is.GreaterThanOrEqualTo(5), "one per image embedded, the query's too");
            Assert.That(measurements.Where(m => m.Instrument == "ris.embedding.duration").Select(m => m.Value), Has.All.GreaterThan(0));
            Assert.That(Count("ris.query.duration"), Is.GreaterThanOrEqualTo(1));
        });
    }

    [Test]
    public async Task AFunctionHostAnswersItsHealthCheck()
    {
        var errors = new StringWriter();
        var app = FunctionHost.TryBuild<FunctionHostTests.EchoCallable>(
            ["--PROJECT_ID=demo-project", "--EXT_INSTANCE_ID=ris", "--LOCATION=us-central1", "--IMG_BUCKET=demo-bucket", "--PORT=0"], errors);
        Assert.That(app, Is.Not.Null, errors.ToString());
        await using (app!)
        {
            await app.StartAsync();
            using var client = new HttpClient { BaseAddress = new Uri(app.Urls.Single().Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal)) };
            using var health = await client.GetAsync(new Uri(FunctionHealth.Path, UriKind.Relative));
            Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            using var body = JsonDocument.Parse(await health.Content.ReadAsStringAsync());
            Assert.That(body.RootElement.GetProperty("status").GetString(), Is.EqualTo("Healthy"));
            await app.StopAsync();
        }
    }

    [TestCase("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736", null)]
    [TestCase("X-Cloud-Trace-Context", "105445AA7843BC8BF206B12000100000/1;o=1", "105445aa7843bc8bf206b12000100000", "0000000000000001")]
    public async Task LogLinesOfARequestCarryItsTraceForCloudLogging(string header, string value, string traceId, string? spanId)
    {
        var lines = new ConcurrentQueue<string>();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders().AddProvider(new CloudLoggingLines(lines));
        await using var app = builder.Build();
        app.UseCloudTraceLogging("demo-project");
        app.MapGet("/", (ILogger<TelemetryTests> logger) =>
        {
            Handled(logger);
            return "ok";
        });
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.TryAddWithoutValidation(header, value);
        using var response = await client.SendAsync(request);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        await app.StopAsync();

        var line = lines.Single(l => l.Contains("handled", StringComparison.Ordinal));
        using var entry = JsonDocument.Parse(line);
        Assert.That(entry.RootElement.GetProperty("logging.googleapis.com/trace").GetString(), Is.EqualTo($"projects/demo-project/traces/{traceId}"), line);
        var span = entry.RootElement.GetProperty("logging.googleapis.com/spanId").GetString();
        Assert.That(span, spanId is null ? Has.Length.EqualTo(16) : Is.EqualTo(spanId), line);
    }

    [Test]
    public async Task ServeWithMetricsExposesThemForPrometheusAfterAnIndexAndAQuery()
    {
        var root = Directory.CreateTempSubdirectory("ris-metrics-").FullName;
        try
        {
            var port = EmulatorProcess.FreePort();
            using var serve = EmulatorProcess.Start(["serve", "--data", Path.Combine(root, "data"), "--port", port.ToString(CultureInfo.InvariantCulture), "--metrics"]);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
            byte[]? sample = null; // The sample set serve generates.
            var deadline = DateTime.UtcNow.AddSeconds(120);
            HttpStatusCode? answered = null;
            while (answered != HttpStatusCode.OK)
            {
                Assert.That(serve.HasExited, Is.False, () => "serve exited: " + serve.Output);
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), () => "no answer within 120 s: " + serve.Output);
                await Task.Delay(500);
                sample ??= File.Exists(Path.Combine(root, "data", "sample-images", "circle-blue.jpg"))
                    ? await File.ReadAllBytesAsync(Path.Combine(root, "data", "sample-images", "circle-blue.jpg"))
                    : null;
                answered = sample is null ? null : await TryQueryAsync(http, sample);
            }

            using var health = await http.GetAsync(new Uri("/health", UriKind.Relative));
            Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.OK), await health.Content.ReadAsStringAsync());

            var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
            Assert.That(metrics, Does.Contain("ris_embedding_duration_seconds_bucket")
                .And.Contain("ris_images_indexed_total")
                .And.Contain("ris_query_duration_seconds_count")
                .And.Contain("ris_tasks_queue_depth")
                .And.Contain("ris_index_images"), metrics);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<HttpStatusCode?> TryQueryAsync(HttpClient http, byte[] image)
    {
        try
        {
            using var content = new StringContent(
                JsonSerializer.Serialize(new { data = new { query = new[] { Convert.ToBase64String(image) } } }), Encoding.UTF8, "application/json");
            using var response = await http.PostAsync(new Uri(CallablePath, UriKind.Relative), content);
            return response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    private static string? ReasonOf(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == Telemetry.ReasonAttribute)
            {
                return tag.Value as string;
            }
        }

        return null;
    }

    /// <summary>Formats every entry with the deployed formatter and the logger factory's scopes, as Cloud Run's console would.</summary>
    [LoggerMessage(Level = LogLevel.Warning, Message = "handled")]
    private static partial void Handled(ILogger logger);

    private sealed class CloudLoggingLines(ConcurrentQueue<string> lines) : ILoggerProvider, ISupportExternalScope
    {
        private readonly CloudLoggingConsoleFormatter _formatter = new();
        private readonly ConcurrentQueue<string> _entries = lines;
        private IExternalScopeProvider? _scopes;

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

        public void Dispose()
        {
        }

        private sealed class Logger(CloudLoggingLines owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => owner._scopes?.Push(state) ?? NullScope.Instance;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (!IsEnabled(logLevel))
                {
                    return;
                }

                using var writer = new StringWriter();
                owner._formatter.Write(new Microsoft.Extensions.Logging.Abstractions.LogEntry<TState>(logLevel, category, eventId, state, exception, formatter), owner._scopes, writer);
                owner._entries.Enqueue(writer.ToString());
            }
        }

        private sealed class NullScope : IDisposable
        {
            public static readonly NullScope Instance = new();

            public void Dispose()
            {
            }
        }
    }
}
