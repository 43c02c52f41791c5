namespace ReverseImageSearch.Core.Embedding;

/// <summary>The reasons an input is not embedded, as reported in <see cref="Ports.EmbeddingResult.RejectionReason"/>.</summary>
public static class ImageRejections
{
    public const string EmptyFile = "empty file";

    public const string UnsupportedFormat = "not a supported image (jpg, png, gif, bmp, webp)";

    public const string TruncatedOrCorrupt = "truncated or corrupt image";

    public static string TooManyPixels(int width, int height, long limit) =>
        FormattableString.Invariant($"image is {width} x {height} pixels, more than the limit of {limit}");
}
