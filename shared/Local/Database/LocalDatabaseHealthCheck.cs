using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ReverseImageSearch.Local.Database;

/// <summary>Unhealthy once the local database was found damaged, with the one line that says how to recover.</summary>
public sealed class LocalDatabaseHealthCheck(LocalDatabase database) : IHealthCheck
{
    public const string Name = "local-database";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(database.Problem is { } problem
            ? HealthCheckResult.Unhealthy(problem.Message)
            : HealthCheckResult.Healthy(database.FilePath));
}
