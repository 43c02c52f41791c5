using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Gcp.Hosting;

namespace ReverseImageSearch.Tests.Gcp.Hosting;

public class CloudLoggingConsoleFormatterTests
{
    [Test]
    public void ErrorBecomesOneJsonLineWithSeverityExceptionCategoryStateAndScope()
    {
        var scopes = new LoggerExternalScopeProvider();
        using var scope = scopes.Push(new Dictionary<string, object?> { ["RequestPath"] = "/ext-ris-backfillTask", ["Attempt"] = 2 });
        var state = new Dictionary<string, object?> { ["TaskName"] = "chunk-7", ["{OriginalFormat}"] = "Chunk {TaskName} failed" };
        var entry = new LogEntry<Dictionary<string, object?>>(
            LogLevel.Error, "ReverseImageSearch.Functions.BackfillTask", new EventId(0), state, new InvalidOperationException("boom"),
            (_, _) => "Chunk chunk-7 failed");
        using var output = new StringWriter();

        new CloudLoggingConsoleFormatter().Write(entry, scopes, output);

        var text = output.ToString();
        Assert.That(text.TrimEnd('\n'), Does.Not.Contain('\n'), "one object per line");
        using var line = JsonDocument.Parse(text);
        var root = line.RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(root.GetProperty("severity").GetString(), Is.EqualTo("ERROR"));
            Assert.That(root.GetProperty("message").GetString(), Does.StartWith("Chunk chunk-7 failed\nSystem.InvalidOperationException: boom"));
            Assert.That(root.GetProperty("category").GetString(), Is.EqualTo("ReverseImageSearch.Functions.BackfillTask"));
            Assert.That(root.GetProperty("TaskName").GetString(), Is.EqualTo("chunk-7"));
            Assert.That(root.TryGetProperty("{OriginalFormat}", out _), Is.False);
            Assert.That(root.GetProperty("RequestPath").GetString(), Is.EqualTo("/ext-ris-backfillTask"));
            Assert.That(root.GetProperty("Attempt").GetInt32(), Is.EqualTo(2));
            Assert.That(DateTimeOffset.TryParse(root.GetProperty("timestamp").GetString(), System.Globalization.CultureInfo.InvariantCulture, out _), Is.True);
        });
    }

    [TestCase(LogLevel.Debug, "DEBUG")]
    [TestCase(LogLevel.Information, "INFO")]
    [TestCase(LogLevel.Warning, "WARNING")]
    [TestCase(LogLevel.Critical, "CRITICAL")]
    public void SeverityFollowsCloudLoggingNames(LogLevel level, string severity) =>
        Assert.That(CloudLoggingConsoleFormatter.Severity(level), Is.EqualTo(severity));
}
