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
/// With INDEX_BACKEND=firestore it creates the Firestore vector index instead (deploy.sh usually made it
/// already: then it is found), waits for it and records INDEX_DEPLOYED, or the failure; queries never waited for it.
/// </summary>
public sealed partial class CreateIndexTrigger(
    IVectorIndexService vectorIndex,
    CoordinationState state,
    ExtensionOptions options,
    TimeProvider clock,
    ILogger<CreateIndexTrigger> logger) : IDocumentFunction
{
    // A claim this old without an operation was abandoned by a crash: CreateIndex answers in seconds. Short,
    // because the creation waits this long after a crash; a holder slower than this records nothing.
    private static readonly TimeSpan AbandonedClaim = TimeSpan.FromMinutes(1);

    // Event-driven functions may run for 9 minutes; a vector index over a fresh collection is ready well before.
    private static readonly TimeSpan VectorIndexTimeout = TimeSpan.FromMinutes(7);

    public async Task HandleAsync(DocumentChange change, CancellationToken cancellationToken)
    {
        if (state.CompletedBackfill(change) is not { } run)
        {
            return;
        }

        var metadata = await state.ReadMetadataAsync(cancellationToken);
        var dimensions = metadata?.OutputShape ?? run.OutputShape;
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
                DistanceMeasure: options.DistanceMeasure,
                NormalizeToUnitLength: options.NormalizeToUnitLength,
                ShardSize: options.ShardSize,
                Algorithm: options.Algorithm),
            cancellationToken), cancellationToken);

        if (!await state.RecordIndexCreationAsync(claim.Token!, operation.Name, cancellationToken))
        {
            LogClaimTakenOver(logger, operation.Name);
            return;
        }

        LogCreating(logger, dimensions.Value, operation.Name);
        if (!options.IndexNeedsBuild)
        {
            await AwaitVectorIndexAsync(operation, cancellationToken);
        }
    }

    /// <summary>Firestore: no endpoint and no deployment; the index is usable once its creation is done.</summary>
    private async Task AwaitVectorIndexAsync(LongRunningOperation operation, CancellationToken cancellationToken)
    {
        string? failure;
        try
        {
            var done = await vectorIndex.WaitUntilDoneAsync(operation, clock, VectorIndexTimeout, cancellationToken);
            failure = done.Error is { } error ? $"{error.Message} (code {error.Code})" : null;
            if (failure is null)
            {
                await state.RecordVectorIndexReadyAsync(done.ResponseResourceName ?? operation.Name, cancellationToken);
                LogVectorIndexReady(logger, done.ResponseResourceName ?? operation.Name);
                return;
            }
        }
        catch (TimeoutException ex)
        {
            failure = ex.Message;
        }

        LogVectorIndexFailed(logger, failure);
        await state.RecordErrorAsync("createIndexTrigger", $"Creating the Firestore vector index failed: {failure}", cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not create the index: outputShape is missing from the metadata document")]
    private static partial void LogNoShape(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Index creation already recorded; ignoring this event")]
    private static partial void LogAlreadyClaimed(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Firestore vector index {Index} is ready; INDEX_DEPLOYED")]
    private static partial void LogVectorIndexReady(ILogger logger, string index);

    [LoggerMessage(Level = LogLevel.Error, Message = "Firestore vector index creation failed: {Message}")]
    private static partial void LogVectorIndexFailed(ILogger logger, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Index creation {Operation} finished after its claim was taken over by a later delivery; that delivery's index is used and this one is left unused")]
    private static partial void LogClaimTakenOver(ILogger logger, string operation);

    [LoggerMessage(Level = LogLevel.Information, Message = "Creating the index with {Dimensions} dimensions: operation {Operation}")]
    private static partial void LogCreating(ILogger logger, long dimensions, string operation);
}
