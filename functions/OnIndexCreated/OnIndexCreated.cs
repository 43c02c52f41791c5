using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

/// <summary>
/// onIndexCreated (Cloud Audit Log: IndexService.CreateIndex): when this instance's index creation
/// finishes, creates a public index endpoint and deploys the index to it; metadata becomes
/// {index, indexEndpoint, status: INDEX_DEPLOYING}. Entries for other indexes of the project are ignored;
/// an entry that arrives before the operation is recorded is retried; a failed creation is recorded in
/// the metadata document.
/// </summary>
public sealed partial class OnIndexCreated(
    IVectorIndexService vectorIndex,
    CoordinationState state,
    ExtensionOptions options,
    TimeProvider clock,
    ILogger<OnIndexCreated> logger) : IAuditLogFunction
{
    // Event-driven functions may run for 9 minutes; endpoint creation takes well under that.
    private static readonly TimeSpan EndpointCreationTimeout = TimeSpan.FromMinutes(7);

    public string MethodName => "google.cloud.aiplatform.v1.IndexService.CreateIndex";

    public async Task HandleAsync(AuditLogEvent auditEvent, CancellationToken cancellationToken)
    {
        if (!auditEvent.Last || auditEvent.OperationId is null)
        {
            return;
        }

        var metadata = await state.ReadMetadataAsync(cancellationToken);
        if (metadata is { CreationUnrecorded: true })
        {
            // createIndexTrigger has claimed the creation but not yet recorded its operation: this entry may be
            // ours. Failing the delivery makes Eventarc (deployed with --retry) bring it again a little later.
            throw new InvalidOperationException("The index creation is claimed but its operation is not recorded yet; retry this entry.");
        }

        if (!ResourceNames.Same(metadata?.Operation, auditEvent.OperationId))
        {
            LogNotOurs(logger, auditEvent.OperationId);
            return;
        }

        if (metadata!.Status is IndexStatus.Deploying or IndexStatus.Deployed)
        {
            return;
        }

        var operation = await vectorIndex.GetOperationAsync(auditEvent.OperationId, cancellationToken);
        if (operation.Error is { } error)
        {
            LogCreationFailed(logger, error.Message);
            await state.RecordErrorAsync("onIndexCreated", $"Index creation failed: {error.Message} (code {error.Code})", cancellationToken);
            return;
        }

        var index = ResourceNames.OwnerOfOperation(auditEvent.OperationId);
        var endpoint = metadata.IndexEndpoint
            ?? await state.RecordingFailureAsync("onIndexCreated", "Creating the index endpoint", () => CreateEndpointAsync(index, cancellationToken), cancellationToken);

        try
        {
            await vectorIndex.DeployIndexAsync(endpoint, new DeployedIndexSpec(
                options.DeployedIndexId, index, options.MachineType, options.AcceleratorType,
                options.AcceleratorCount, options.MinReplicaCount, options.MaxReplicaCount), cancellationToken);
        }
        catch (ServiceException ex) when (ex.IsAlreadyExists)
        {
            LogAlreadyDeploying(logger, options.DeployedIndexId);
        }

        await state.RecordDeploymentRequestedAsync(index, endpoint, cancellationToken);
        LogDeploying(logger, index, endpoint);
    }

    private async Task<string> CreateEndpointAsync(string index, CancellationToken cancellationToken)
    {
        var created = await vectorIndex.CreateIndexEndpointAsync($"ext-{options.InstanceId}-endpoint", cancellationToken);
        var done = await vectorIndex.WaitUntilDoneAsync(created, clock, EndpointCreationTimeout, cancellationToken);
        var endpoint = done.Error is null ? done.ResponseResourceName : null;
        if (endpoint is null)
        {
            throw new InvalidOperationException($"Creating the index endpoint failed: {done.Error?.Message ?? "no endpoint name in the answer"}");
        }

        // Recorded at once so a redelivered event deploys to this endpoint instead of creating another.
        await state.RecordIndexEndpointAsync(index, endpoint, cancellationToken);
        return endpoint;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Ignoring CreateIndex operation {Operation}: not this instance's index")]
    private static partial void LogNotOurs(ILogger logger, string operation);

    [LoggerMessage(Level = LogLevel.Error, Message = "Index creation failed: {Message}")]
    private static partial void LogCreationFailed(ILogger logger, string message);

    [LoggerMessage(Level = LogLevel.Information, Message = "{DeployedIndexId} is already deployed or deploying")]
    private static partial void LogAlreadyDeploying(ILogger logger, string deployedIndexId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Deploying {Index} to {Endpoint}")]
    private static partial void LogDeploying(ILogger logger, string index, string endpoint);
}
