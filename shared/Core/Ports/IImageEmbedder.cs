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
}

public sealed record EmbeddingResult(float[]? Vector, string? RejectionReason)
{
    public bool IsRejected => Vector is null;

    public static EmbeddingResult Success(float[] vector) => new(vector, null);

    public static EmbeddingResult Rejected(string reason) => new(null, reason);
}
