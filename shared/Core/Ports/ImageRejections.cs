namespace ReverseImageSearch.Core.Ports;

/// <summary>The reasons an input is not embedded, as reported in <see cref="EmbeddingResult.RejectionReason"/>.</summary>
public static class ImageRejections
{
    public const string EmptyFile = "empty file";

    public const string UnsupportedFormat = "not a supported image (jpg, png, gif, bmp, webp)";

    public const string TruncatedOrCorrupt = "truncated or corrupt image";

    public const string Deleted = "deleted before the backfill reached it";

    public static string TooManyPixels(int width, int height, long limit) =>
        FormattableString.Invariant($"image is {width} x {height} pixels, more than the limit of {limit}");

    public static string TooManyBytes(long size, long limit) =>
        FormattableString.Invariant($"object is {size} bytes, more than the limit of {limit}");

    /// <summary>A reason as a short stable word, for a metric attribute (the reasons themselves carry numbers).</summary>
    public static string Kind(string? reason) => reason switch
    {
        EmptyFile => "empty",
        UnsupportedFormat => "unsupported_format",
        TruncatedOrCorrupt => "corrupt",
        Deleted => "deleted",
        _ when reason?.StartsWith("image is ", StringComparison.Ordinal) == true => "too_many_pixels",
        _ when reason?.StartsWith("object is ", StringComparison.Ordinal) == true => "too_many_bytes",
        _ => "other",
    };
}
