using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>
/// One JSON object per line in the shape Cloud Logging parses from Cloud Run's stdout: severity, message
/// (with the exception's text appended, which Error Reporting reads), timestamp, the logger category, and
/// the message's named values and scope values as further fields of jsonPayload.
/// </summary>
public sealed class CloudLoggingConsoleFormatter() : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "cloud-logging";

    private const string OriginalFormatKey = "{OriginalFormat}";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        ArgumentNullException.ThrowIfNull(textWriter);
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (logEntry.Exception is not null)
        {
            message = message + "\n" + logEntry.Exception;
        }

        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("severity", Severity(logEntry.LogLevel));
            writer.WriteString("message", message);
            writer.WriteString("timestamp", DateTimeOffset.UtcNow);
            writer.WriteString("category", logEntry.Category);
            var written = new HashSet<string>(StringComparer.Ordinal) { "severity", "message", "timestamp", "category" };
            if (logEntry.EventId.Id != 0)
            {
                writer.WriteNumber("eventId", logEntry.EventId.Id);
                written.Add("eventId");
            }

            WriteFields(writer, logEntry.State, written);
            scopeProvider?.ForEachScope((scope, state) => WriteFields(state.Writer, scope, state.Written), (Writer: writer, Written: written));
            writer.WriteEndObject();
        }

        textWriter.Write(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        textWriter.Write('\n');
    }

    /// <summary>Cloud Logging's LogSeverity names.</summary>
    public static string Severity(LogLevel level) => level switch
    {
        LogLevel.Trace or LogLevel.Debug => "DEBUG",
        LogLevel.Information => "INFO",
        LogLevel.Warning => "WARNING",
        LogLevel.Error => "ERROR",
        LogLevel.Critical => "CRITICAL",
        _ => "DEFAULT",
    };

    // Structured state and scopes are lists of name/value pairs; the first writer of a name wins.
    private static void WriteFields(Utf8JsonWriter writer, object? values, HashSet<string> written)
    {
        if (values is not IEnumerable<KeyValuePair<string, object?>> pairs)
        {
            return;
        }

        foreach (var (name, value) in pairs)
        {
            if (name == OriginalFormatKey || !written.Add(name))
            {
                continue;
            }

            writer.WritePropertyName(name);
            switch (value)
            {
                case null:
                    writer.WriteNullValue();
                    break;
                case bool flag:
                    writer.WriteBooleanValue(flag);
                    break;
                case int or long or short or byte or uint or ulong or ushort or sbyte or float or double or decimal:
                    writer.WriteRawValue(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)!);
                    break;
                default:
                    writer.WriteStringValue(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture));
                    break;
            }
        }
    }
}

public static class FunctionLoggingExtensions
{
    /// <summary>Cloud Run sets K_SERVICE; its presence means "deployed".</summary>
    public const string CloudRunServiceKey = "K_SERVICE";

    /// <summary>Deployed (K_SERVICE set): Cloud Logging JSON lines on stdout; otherwise the plain console.</summary>
    public static ILoggingBuilder AddFunctionConsoleLogging(this ILoggingBuilder logging, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(logging);
        ArgumentNullException.ThrowIfNull(configuration);
        logging.ClearProviders();
        if (string.IsNullOrEmpty(configuration[CloudRunServiceKey]))
        {
            logging.AddSimpleConsole();
        }
        else
        {
            logging.AddConsole(options => options.FormatterName = CloudLoggingConsoleFormatter.FormatterName);
            logging.AddConsoleFormatter<CloudLoggingConsoleFormatter, ConsoleFormatterOptions>();
        }

        return logging;
    }
}
