namespace ReverseImageSearch.Core.Coordination;

public enum IndexReadiness
{
    /// <summary>No backfill has run and no index exists: the first image creates one.</summary>
    NotCreated,

    /// <summary>A backfill runs, or the index is being built or deployed: datapoint writes must wait.</summary>
    Preparing,

    /// <summary>The index is deployed and answers upserts, removals and queries.</summary>
    Deployed,
}

/// <summary>
/// The deployed index, as the metadata document names it. With INDEX_BACKEND=firestore there is no endpoint: both
/// endpoint names are empty and <see cref="Index"/> is the vector collection the documents are written to.
/// </summary>
public sealed record DeployedIndex(string Index, string IndexEndpoint, string PublicEndpointDomainName);

/// <summary>
/// Whether the index can be used, as the tasks and metadata documents say. <see cref="Deployed"/> is set when the index
/// takes writes and answers queries: once INDEX_DEPLOYED with Vertex AI, always with Firestore.
/// </summary>
/// <param name="Status">The metadata document's status; null before the index creation is claimed.</param>
/// <param name="EmbeddingMismatch">Set when the index's vectors were made with other <see cref="EmbeddingSettings"/>
/// than the running ones (MATCH_COLOR or the model changed on an existing installation): what differs and what to do.
/// Neither queries nor writes may use the index then.</param>
public sealed record IndexAvailability(IndexReadiness Readiness, IndexStatus? Status, DeployedIndex? Deployed, string? EmbeddingMismatch = null)
{
    public string Describe() => EmbeddingMismatch ?? Readiness switch
    {
        IndexReadiness.NotCreated => "no index has been created yet",
        IndexReadiness.Preparing => Status is { } status
            ? $"the index is not deployed yet (status {CoordinationState.StatusName(status)})"
            : "the backfill is still running",
        _ => "the index is deployed",
    };
}
