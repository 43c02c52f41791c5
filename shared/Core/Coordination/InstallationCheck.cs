using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Core.Coordination;

/// <summary>What the install task does about what an earlier run of install left in the coordination documents.</summary>
public enum InstallAction
{
    /// <summary>Nothing recorded (or it was reset): plan a new backfill.</summary>
    Start,

    /// <summary>A backfill is under way: continue its run, keeping the chunks counted and the datapoint files written.</summary>
    Resume,

    /// <summary>The backfill finished: the index is built (or being built) from its files; new images are streamed.</summary>
    Keep,
}

/// <param name="RunId">The run to continue (<see cref="InstallAction.Resume"/>); null otherwise.</param>
public sealed record InstallPlan(InstallAction Action, string? RunId);

/// <summary>
/// Run by the install task (backfillTrigger) before anything else. Re-running install must neither restart a completed
/// backfill nor delete the datapoint files an index build is reading, so a recorded backfill is resumed or kept. But an
/// index the documents record and Vertex AI no longer has (deleted by an uninstall that kept the documents, or by hand:
/// indexEndpoints.get or operations.get answers 404, or the endpoint lost the deployed index) would leave the
/// installation with INDEX_DEPLOYED and no index forever: then the documents are reset and everything starts over.
/// </summary>
public sealed partial class InstallationCheck(
    CoordinationState state,
    IVectorIndexService vectorIndex,
    ExtensionOptions options,
    ILogger<InstallationCheck> logger)
{
    public async Task<InstallPlan> PlanAsync(CancellationToken cancellationToken)
    {
        var run = await state.ReadBackfillRunAsync(cancellationToken);
        var metadata = await state.ReadMetadataAsync(cancellationToken);
        if (options.IndexNeedsBuild && metadata is not null && await VanishedAsync(metadata, cancellationToken) is { } gone)
        {
            LogStartingOver(logger, gone, CoordinationState.StatusName(metadata.Status));
            await state.ResetAsync(cancellationToken);
            return new InstallPlan(InstallAction.Start, null);
        }

        return run?.Status switch
        {
            null => new InstallPlan(InstallAction.Start, null),
            BackfillStatus.Done => new InstallPlan(InstallAction.Keep, null),
            _ => new InstallPlan(InstallAction.Resume, run.RunId),
        };
    }

    /// <summary>The recorded Vertex AI resource that no longer exists, or null when all that is recorded exists.</summary>
    private async Task<string?> VanishedAsync(IndexMetadata recorded, CancellationToken cancellationToken)
    {
        var asked = recorded.IndexEndpoint ?? recorded.Operation;
        try
        {
            if (recorded.IndexEndpoint is { } endpoint)
            {
                var found = await vectorIndex.GetIndexEndpointAsync(endpoint, cancellationToken);
                return recorded.Status == IndexStatus.Deployed && !found.DeployedIndexIds.Contains(options.DeployedIndexId)
                    ? $"{options.DeployedIndexId} on {endpoint}"
                    : null;
            }

            if (recorded.Operation is { } operation)
            {
                await vectorIndex.GetOperationAsync(operation, cancellationToken);
            }

            return null;
        }
        catch (ServiceException e) when (e.IsNotFound)
        {
            return asked;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The recorded index resource {Resource} no longer exists (status {Status}): resetting the coordination documents and building a new index")]
    private static partial void LogStartingOver(ILogger logger, string resource, string? status);
}
