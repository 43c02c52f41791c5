using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>The summary of every registered health check: the worst status and the first problem, in one line.</summary>
/// <param name="Status">Healthy, Degraded or Unhealthy.</param>
/// <param name="Problem">What is wrong and how to recover (the first failing check's description); null when healthy.</param>
public sealed record FunctionHealthSummary(string Status, string? Problem, IReadOnlyList<FunctionHealthCheck> Checks)
{
    public static FunctionHealthSummary From(HealthReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var checks = report.Entries.Select(entry => new FunctionHealthCheck(entry.Key, entry.Value.Status.ToString(), entry.Value.Description)).ToArray();
        var problem = report.Entries.Values.Where(entry => entry.Status != HealthStatus.Healthy).Select(entry => entry.Description).FirstOrDefault();
        return new FunctionHealthSummary(report.Status.ToString(), problem, checks);
    }
}

public sealed record FunctionHealthCheck(string Name, string Status, string? Description);

/// <summary>
/// One health check for every host: <c>GET /health</c> answers 200 with the checks' summary while every
/// registered <see cref="IHealthCheck"/> is healthy (or degraded), 503 when one is unhealthy. A function host has
/// the process itself to report (it answers when it runs); the local emulator adds its state file's check.
/// </summary>
public static class FunctionHealth
{
    public const string Path = "/health";

    /// <summary>Registers the health-check service; hosts and adapters add their checks with AddHealthChecks().AddCheck.</summary>
    public static IServiceCollection AddFunctionHealth(this IServiceCollection services)
    {
        services.AddHealthChecks();

        // A failing check is logged by whoever found the problem, once; not again at every probe.
        services.Configure<LoggerFilterOptions>(filters => filters.AddFilter(typeof(HealthCheckService).Namespace, LogLevel.Critical));
        return services;
    }

    /// <summary>Maps <see cref="Path"/>; a literal route, so it wins over a function mapped at every path.</summary>
    public static IEndpointConventionBuilder MapFunctionHealth(this IEndpointRouteBuilder endpoints) =>
        endpoints.MapHealthChecks(Path, new HealthCheckOptions { ResponseWriter = WriteAsync });

    /// <summary>Runs every registered check now.</summary>
    public static async Task<FunctionHealthSummary> CheckAsync(IServiceProvider services, CancellationToken cancellationToken) =>
        FunctionHealthSummary.From(await services.GetRequiredService<HealthCheckService>().CheckHealthAsync(cancellationToken));

    private static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        return JsonSerializer.SerializeAsync(context.Response.Body, FunctionHealthSummary.From(report), CoreJson.Options, context.RequestAborted);
    }
}
