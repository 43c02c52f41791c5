using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

/// <summary>
/// createIndexTrigger (Firestore update of _ext-{instance}/tasks): when the backfill's status turns
/// DONE, creates the STREAM_UPDATE Vector Search index over the datapoint files and records
/// {status: INDEX_BUILDING, operation}. A duplicate event finds the creation done and does nothing; one that
/// finds it claimed but unrecorded fails, so it comes back until the claim is complete or abandoned.
/// </summary>
public sealed partial class CreateIndexTrigger(
    IVectorIndexService vectorIndex,
    CoordinationState state,
    ExtensionOptions options,
    ILogger<CreateIndexTrigger> logger) : IDocumentFunction
{
    // A claim this old without an operation was abandoned by a crash: CreateIndex answers in seconds. Short,
    // because the creation waits this long after a crash; a holder slower than this records nothing.
    private static readonly TimeSpan AbandonedClaim = TimeSpan.FromMinutes(1);

    public async Task HandleAsync(DocumentChange change, CancellationToken cancellationToken)
    {
        if (change.Path != state.Paths.Tasks)
        {
            return;
        }

        var statusAfter = change.After?.GetString("status");
        if (statusAfter != BackfillStatus.Done || change.Before?.GetString("status") == BackfillStatus.Done)
        {
            return;
        }

        var metadata = await state.GetMetadataAsync(cancellationToken);
        var dimensions = metadata?.GetInt64("outputShape") ?? change.After!.GetInt64("outputShape");
        if (dimensions is not > 0)
        {
            const string problem = "The backfill finished but outputShape is not a positive number; the index cannot be created.";
            LogNoShape(logger);
            await state.RecordErrorAsync("createIndexTrigger", problem, cancellationToken);
            return;
        }

        var claim = await state.ClaimIndexCreationAsync(AbandonedClaim, cancellationToken);
        switch (claim.Outcome)
        {
            case IndexCreationClaimOutcome.AlreadyCreated:
                LogAlreadyClaimed(logger);
                return;
            case IndexCreationClaimOutcome.HeldByAnother:
                // Its holder may have died before recording the operation: fail, so this event is delivered
                // again until the operation is recorded or the claim is old enough to take over.
                throw new InvalidOperationException(
                    $"The index creation is claimed but its operation is not recorded yet; retrying until it is, or until the claim is {AbandonedClaim.TotalSeconds:0} s old.");
        }

        var operation = await state.RecordingFailureAsync("createIndexTrigger", "Creating the index", () => vectorIndex.CreateIndexAsync(
            new IndexDefinition(
                DisplayName: $"ext-{options.InstanceId}-index",
                ContentsDeltaUri: options.DatapointsUri,
                Dimensions: (int)dimensions,
                ApproximateNeighborsCount: options.NeighborsCount,
                DistanceMeasureType: options.DistanceMeasure.ToWireName(),
                FeatureNormType: options.FeatureNormType,
                ShardSize: options.ShardSize,
                AlgorithmConfig: options.AlgorithmConfig),
            cancellationToken), cancellationToken);

        if (!await state.RecordIndexCreationAsync(claim.Token!, operation.Name, cancellationToken))
        {
            LogClaimTakenOver(logger, operation.Name);
            return;
        }

        LogCreating(logger, dimensions.Value, operation.Name);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not create the index: outputShape is missing from the metadata document")]
    private static partial void LogNoShape(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Index creation already recorded; ignoring this event")]
    private static partial void LogAlreadyClaimed(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Index creation {Operation} finished after its claim was taken over by a later delivery; that delivery's index is used and this one is left unused")]
    private static partial void LogClaimTakenOver(ILogger logger, string operation);

    [LoggerMessage(Level = LogLevel.Information, Message = "Creating the index with {Dimensions} dimensions: operation {Operation}")]
    private static partial void LogCreating(ILogger logger, long dimensions, string operation);
}
