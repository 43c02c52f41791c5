using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

/// <summary>
/// onIndexDeployed (Cloud Audit Log: IndexEndpointService.DeployIndex): when the deployment to this
/// instance's endpoint finishes, records {status: INDEX_DEPLOYED, publicEndpointDomainName} and drops
/// the operation. From then on uploads are indexed at once and queries are answered.
/// </summary>
public sealed partial class OnIndexDeployed(
    IVectorIndexService vectorIndex,
    CoordinationState state,
    ILogger<OnIndexDeployed> logger) : IAuditLogFunction
{
    public string MethodName => "google.cloud.aiplatform.v1.IndexEndpointService.DeployIndex";

    public async Task HandleAsync(AuditLogEvent auditEvent, CancellationToken cancellationToken)
    {
        if (!auditEvent.Last)
        {
            return;
        }

        var metadata = await state.ReadMetadataAsync(cancellationToken);
        var endpoint = metadata?.IndexEndpoint;
        if (!ResourceNames.Same(endpoint, auditEvent.ResourceName))
        {
            LogNotOurs(logger, auditEvent.ResourceName);
            return;
        }

        if (metadata!.Status == IndexStatus.Deployed)
        {
            return;
        }

        if (auditEvent.OperationId is not null
            && (await vectorIndex.GetOperationAsync(auditEvent.OperationId, cancellationToken)).Error is { } error)
        {
            LogDeployFailed(logger, error.Message);
            await state.RecordErrorAsync("onIndexDeployed", $"Index deployment failed: {error.Message} (code {error.Code})", cancellationToken);
            return;
        }

        var info = await vectorIndex.GetIndexEndpointAsync(endpoint!, cancellationToken);
        var domain = info.PublicEndpointDomainName
            ?? throw new InvalidOperationException($"Index endpoint {endpoint} has no public endpoint domain name.");

        await state.RecordDeployedAsync(domain, cancellationToken);
        LogDeployed(logger, endpoint!, domain);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Ignoring DeployIndex on {Resource}: not this instance's endpoint")]
    private static partial void LogNotOurs(ILogger logger, string resource);

    [LoggerMessage(Level = LogLevel.Error, Message = "Index deployment failed: {Message}")]
    private static partial void LogDeployFailed(ILogger logger, string message);

    [LoggerMessage(Level = LogLevel.Information, Message = "Index deployed on {Endpoint} ({Domain}); ready for queries")]
    private static partial void LogDeployed(ILogger logger, string endpoint, string domain);
}
