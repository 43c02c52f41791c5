namespace ReverseImageSearch.Embedding;

/// <summary>The encoded image formats the embedder accepts.</summary>
public enum ImageFormat
{
    Jpeg,
    Png,
    Gif,
    Bmp,
    Webp,
}

/// <summary>Recognises an image format by its leading bytes, whatever the file is called.</summary>
public static class ImageFormatSniffer
{
    private static ReadOnlySpan<byte> JpegMagic => [0xFF, 0xD8, 0xFF];

    private static ReadOnlySpan<byte> PngMagic => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    private static ReadOnlySpan<byte> Gif87Magic => "GIF87a"u8;

    private static ReadOnlySpan<byte> Gif89Magic => "GIF89a"u8;

    private static ReadOnlySpan<byte> BmpMagic => "BM"u8;

    private static ReadOnlySpan<byte> RiffMagic => "RIFF"u8;

    private static ReadOnlySpan<byte> WebpMagic => "WEBP"u8;

    /// <summary>The format whose signature starts <paramref name="content"/>, or null when none does.</summary>
    public static ImageFormat? Detect(ReadOnlySpan<byte> content)
    {
        if (content.StartsWith(JpegMagic))
        {
            return ImageFormat.Jpeg;
        }

        if (content.StartsWith(PngMagic))
        {
            return ImageFormat.Png;
        }

        if (content.StartsWith(Gif87Magic) || content.StartsWith(Gif89Magic))
        {
            return ImageFormat.Gif;
        }

        if (content.StartsWith(BmpMagic))
        {
            return ImageFormat.Bmp;
        }

        // RIFF container: "RIFF", 4 bytes of length, then the form type.
        if (content.Length >= 12 && content.StartsWith(RiffMagic) && content.Slice(8, 4).SequenceEqual(WebpMagic))
        {
            return ImageFormat.Webp;
        }

        return null;
    }
}
