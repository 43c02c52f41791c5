using SkiaSharp;

namespace ReverseImageSearch.Embedding;

/// <summary>Maps stored pixels to upright ones according to the EXIF orientation a codec reports.</summary>
internal static class ImageOrientation
{
    /// <summary>True when the upright image is the stored one turned a quarter (width and height swap).</summary>
    public static bool SwapsAxes(SKEncodedOrigin origin) =>
        origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;

    /// <summary>
    /// The transform from stored coordinates (0..width, 0..height) to upright coordinates. EXIF names the
    /// origin by where the stored first row and first column end up: "RightTop" (6) puts row 0 on the right
    /// and column 0 on top, which is a quarter turn clockwise.
    /// </summary>
    public static SKMatrix StoredToUpright(SKEncodedOrigin origin, float width, float height) => origin switch
    {
        // SKMatrix arguments: x' = a*x + b*y + c, y' = d*x + e*y + f, then the perspective row.
        SKEncodedOrigin.TopRight => new SKMatrix(-1, 0, width, 0, 1, 0, 0, 0, 1),
        SKEncodedOrigin.BottomRight => new SKMatrix(-1, 0, width, 0, -1, height, 0, 0, 1),
        SKEncodedOrigin.BottomLeft => new SKMatrix(1, 0, 0, 0, -1, height, 0, 0, 1),
        SKEncodedOrigin.LeftTop => new SKMatrix(0, 1, 0, 1, 0, 0, 0, 0, 1),
        SKEncodedOrigin.RightTop => new SKMatrix(0, -1, height, 1, 0, 0, 0, 0, 1),
        SKEncodedOrigin.RightBottom => new SKMatrix(0, -1, height, -1, 0, width, 0, 0, 1),
        SKEncodedOrigin.LeftBottom => new SKMatrix(0, 1, 0, -1, 0, width, 0, 0, 1),
        _ => SKMatrix.Identity,
    };
}
