namespace ReverseImageSearch.Core.Ports;

/// <summary>Turns encoded images into feature vectors.</summary>
public interface IImageEmbedder
{
    /// <summary>Length of every vector this embedder produces.</summary>
    int Dimensions { get; }

    /// <summary>
    /// One result per input, in order. An input that is not a usable image (unknown format, corrupt,
    /// truncated, empty, too many pixels) gives a rejected result with the reason; other failures throw.
    /// </summary>
    Task<IReadOnlyList<EmbeddingResult>> EmbedAsync(IReadOnlyList<ReadOnlyMemory<byte>> images, CancellationToken cancellationToken = default);

    /// <summary>
    /// As <see cref="EmbedAsync"/>, for images being stored: with MATCH_CROPS each result also carries the vectors of
    /// the image's views (<see cref="Coordination.ImageViews"/>). Queries use <see cref="EmbedAsync"/>: one vector each.
    /// </summary>
    Task<IReadOnlyList<EmbeddingResult>> EmbedForIndexAsync(IReadOnlyList<ReadOnlyMemory<byte>> images, CancellationToken cancellationToken = default) =>
        EmbedAsync(images, cancellationToken);
}

public sealed record EmbeddingResult(float[]? Vector, string? RejectionReason)
{
    /// <summary>The vectors of the image's views, by view name (<see cref="Coordination.ImageViews.Names"/>); empty unless asked for.</summary>
    public IReadOnlyList<ImageView> Views { get; init; } = [];

    public bool IsRejected => Vector is null;

    public static EmbeddingResult Success(float[] vector) => new(vector, null);

    public static EmbeddingResult Rejected(string reason) => new(null, reason);
}

/// <param name="Name">One of <see cref="Coordination.ImageViews.Names"/>.</param>
public sealed record ImageView(string Name, float[] Vector);
