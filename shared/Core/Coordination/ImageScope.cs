using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Core.Coordination;

/// <summary>Which stored objects are this instance's images: under IMG_PATH, and an image by name or content type.</summary>
public sealed class ImageScope(ExtensionOptions options)
{
    /// <summary>Extensions of the supported formats; content is checked again when decoding.</summary>
    public static readonly IReadOnlySet<string> ImageExtensions =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp" };

    /// <summary>The listing prefix: "IMG_PATH/" or empty for the whole bucket.</summary>
    public string Prefix => options.ImagePath.Length == 0 ? "" : options.ImagePath + "/";

    public bool Contains(string bucket, string objectName, string? contentType) =>
        string.Equals(bucket, options.ImageBucket, StringComparison.Ordinal)
        && objectName.StartsWith(Prefix, StringComparison.Ordinal)
        && !objectName.EndsWith('/')
        && IsImageCandidate(objectName, contentType);

    public static bool IsImageCandidate(string objectName, string? contentType) =>
        ImageExtensions.Contains(Path.GetExtension(objectName))
        || (contentType?.StartsWith("image/", StringComparison.OrdinalIgnoreCase) ?? false);
}
