using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using ReverseImageSearch.Core;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>
/// One telemetry wiring for every host: Core's meter and activity source (<see cref="Telemetry"/>) and ASP.NET Core's
/// requests, exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (OpenTelemetry's own variables choose the
/// protocol and headers), and log lines that carry the request's trace for Cloud Logging.
/// </summary>
public static class FunctionTelemetry
{
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";
    public const string TraceField = "logging.googleapis.com/trace";
    public const string SpanIdField = "logging.googleapis.com/spanId";
    public const string TraceParentHeader = "traceparent";
    public const string CloudTraceHeader = "X-Cloud-Trace-Context";

    /// <param name="metrics">Further metric readers (the emulator's Prometheus endpoint).</param>
    public static IServiceCollection AddFunctionTelemetry(this IServiceCollection services, IConfiguration configuration, Action<MeterProviderBuilder>? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var telemetry = services.AddOpenTelemetry()
            .WithMetrics(builder =>
            {
                builder.AddMeter(Telemetry.Name).AddAspNetCoreInstrumentation();
                metrics?.Invoke(builder);
            })
            .WithTracing(builder => builder.AddSource(Telemetry.Name).AddAspNetCoreInstrumentation());
        if (!string.IsNullOrWhiteSpace(configuration[OtlpEndpointKey]))
        {
            telemetry.UseOtlpExporter();
        }

        return services;
    }

    /// <summary>
    /// Gives every log line written while a request runs the fields Cloud Logging links to its trace:
    /// <see cref="TraceField"/> (projects/{project}/traces/{traceId}) and <see cref="SpanIdField"/>, from the
    /// request's <c>traceparent</c> (ASP.NET Core's activity continues it) or else its <c>X-Cloud-Trace-Context</c>.
    /// </summary>
    public static IApplicationBuilder UseCloudTraceLogging(this IApplicationBuilder app, string projectId)
    {
        ArgumentNullException.ThrowIfNull(app);
        var logger = app.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(FunctionTelemetry).FullName!);
        return app.Use(async (context, next) =>
        {
            if (TraceOf(context.Request, Activity.Current) is not { } trace)
            {
                await next(context);
                return;
            }

            using (logger.BeginScope(new Dictionary<string, object?>
            {
                [TraceField] = $"projects/{projectId}/traces/{trace.TraceId}",
                [SpanIdField] = trace.SpanId,
            }))
            {
                await next(context);
            }
        });
    }

    /// <summary>The trace and span a request belongs to, or null when it names none.</summary>
    public static (string TraceId, string SpanId)? TraceOf(HttpRequest request, Activity? activity)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (activity is not null && request.Headers.ContainsKey(TraceParentHeader) && activity.TraceId != default)
        {
            return (activity.TraceId.ToHexString(), activity.SpanId.ToHexString());
        }

        // TRACE_ID/SPAN_ID;o=OPTIONS: a 32-digit hex trace id and a decimal span id.
        var header = request.Headers[CloudTraceHeader].ToString();
        var slash = header.IndexOf('/', StringComparison.Ordinal);
        var traceId = slash < 0 ? header : header[..slash];
        if (traceId.Length != 32 || !traceId.All(char.IsAsciiHexDigit))
        {
            return null;
        }

        var span = slash < 0 ? "" : header[(slash + 1)..].Split(';')[0];
        var spanId = ulong.TryParse(span, NumberStyles.None, CultureInfo.InvariantCulture, out var number)
            ? number.ToString("x16", CultureInfo.InvariantCulture)
            : "";
        return (traceId.ToLowerInvariant(), spanId);
    }
}
