using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Ports;
using SkiaSharp;

namespace ReverseImageSearch.Embedding;

/// <summary>What became of one encoded image: a rejection reason, or the size it was decoded at.</summary>
/// <param name="DecodedWidth">Width of the decoded (possibly reduced-scale, not yet oriented) pixels; 0 when rejected.</param>
/// <param name="DecodedHeight">Height of the decoded pixels; 0 when rejected.</param>
public readonly record struct PreprocessResult(string? RejectionReason, int DecodedWidth, int DecodedHeight)
{
    public bool IsRejected => RejectionReason is not null;

    public static PreprocessResult Rejected(string reason) => new(reason, 0, 0);
}

/// <summary>
/// Turns encoded image bytes into the model input: upright, centre square crop, resized to
/// InputHeight x InputWidth, RGB (or its luma in all three channels) as float32 NHWC in [0, 1].
/// Safe to call from many threads: decoded pixels in flight across all of them are bounded by one
/// <see cref="MemoryBudget"/> in pixels (a 49-megapixel PNG decodes at full size, 4 bytes a pixel), so
/// concurrent requests queue for memory instead of each taking it.
/// </summary>
public sealed class ImagePreprocessor
{
    private const int Channels = 3;

    // Beyond this minification bilinear sampling skips source pixels and aliases; mipmaps average them first.
    private const float MipmapMinificationThreshold = 2f;

    private static readonly float[] ByteToUnit = CreateByteToUnit();

    private readonly long _maxImagePixels;
    private readonly MemoryBudget _decodedPixels;

    /// <param name="decodedPixels">Pixels that may be decoded at once across every caller; by default <paramref name="maxImagePixels"/>,
    /// so the largest legal image decodes alone and smaller ones share.</param>
    public ImagePreprocessor(int inputHeight, int inputWidth, long maxImagePixels, bool grayscale = false, MemoryBudget? decodedPixels = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputHeight);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxImagePixels);
        InputHeight = inputHeight;
        InputWidth = inputWidth;
        _maxImagePixels = maxImagePixels;
        _decodedPixels = decodedPixels ?? new MemoryBudget(maxImagePixels);
        Grayscale = grayscale;
    }

    /// <summary>Whether every channel receives the pixel's luma (ITU-R BT.601 weights) instead of its colour.</summary>
    public bool Grayscale { get; }

    public int InputHeight { get; }

    public int InputWidth { get; }

    /// <summary>Floats one image occupies in the NHWC input tensor.</summary>
    public int TensorLength => InputHeight * InputWidth * Channels;

    /// <summary>
    /// Decodes <paramref name="encoded"/> into <paramref name="destination"/> (exactly <see cref="TensorLength"/> floats).
    /// Bad input never throws: it comes back as a rejection, and <paramref name="destination"/> is then unspecified.
    /// </summary>
    public PreprocessResult Preprocess(ReadOnlyMemory<byte> encoded, Span<float> destination)
    {
        if (destination.Length != TensorLength)
        {
            throw new ArgumentException($"The destination must hold {TensorLength} floats, not {destination.Length}.", nameof(destination));
        }

        if (encoded.IsEmpty)
        {
            return PreprocessResult.Rejected(ImageRejections.EmptyFile);
        }

        if (ImageFormatSniffer.Detect(encoded.Span) is null)
        {
            return PreprocessResult.Rejected(ImageRejections.UnsupportedFormat);
        }

        using var data = PinnedSkData.Create(encoded);
        using var codec = SKCodec.Create(data.Data);
        if (codec is null)
        {
            return PreprocessResult.Rejected(ImageRejections.TruncatedOrCorrupt);
        }

        // The codec has read only the header so far: refuse decompression bombs before allocating pixels.
        var header = codec.Info;
        if ((long)header.Width * header.Height > _maxImagePixels)
        {
            return PreprocessResult.Rejected(ImageRejections.TooManyPixels(header.Width, header.Height, _maxImagePixels));
        }

        var decodeSize = ChooseDecodeSize(codec);
        using var admitted = _decodedPixels.Acquire((long)decodeSize.Width * decodeSize.Height);
        // Unpremultiplied so that colour survives under any alpha; alpha itself is then ignored (the model takes RGB).
        var decodeInfo = new SKImageInfo(decodeSize.Width, decodeSize.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var decoded = new SKBitmap(decodeInfo, SKBitmapAllocFlags.ZeroPixels);
        // First frame only (GIF); anything but complete success, partial images included, is refused.
        var result = codec.GetPixels(decodeInfo, decoded.GetPixels(), decoded.RowBytes, new SKCodecOptions(SKZeroInitialized.Yes));
        if (result != SKCodecResult.Success)
        {
            return PreprocessResult.Rejected(ImageRejections.TruncatedOrCorrupt);
        }

        DrawUprightCenterSquare(decoded, codec.EncodedOrigin, destination);
        return new PreprocessResult(null, decodeSize.Width, decodeSize.Height);
    }

    /// <summary>
    /// The smallest size the codec can decode at directly (JPEG and WebP scale by eighths while decoding) whose
    /// shorter side still covers the model input, so a 12-megapixel photo is never decoded at full size.
    /// </summary>
    private SKSizeI ChooseDecodeSize(SKCodec codec)
    {
        var needed = Math.Max(InputHeight, InputWidth);
        for (var eighths = 1; eighths < 8; eighths++)
        {
            var size = codec.GetScaledDimensions(eighths / 8f);
            if (Math.Min(size.Width, size.Height) >= needed)
            {
                return size;
            }
        }

        return codec.Info.Size;
    }

    private void DrawUprightCenterSquare(SKBitmap decoded, SKEncodedOrigin origin, Span<float> destination)
    {
        var swaps = ImageOrientation.SwapsAxes(origin);
        float uprightWidth = swaps ? decoded.Height : decoded.Width;
        float uprightHeight = swaps ? decoded.Width : decoded.Height;
        var side = Math.Min(uprightWidth, uprightHeight);
        var scaleX = InputWidth / side;
        var scaleY = InputHeight / side;

        // Stored pixels -> upright -> centre square moved to the origin -> scaled onto the model input.
        var cropToInput = SKMatrix.CreateScaleTranslation(
            scaleX, scaleY, -scaleX * (uprightWidth - side) / 2, -scaleY * (uprightHeight - side) / 2);
        var transform = SKMatrix.Concat(cropToInput, ImageOrientation.StoredToUpright(origin, decoded.Width, decoded.Height));

        // Bilinear as the original; with trilinear mipmaps once shrinking by more than 2x, where bilinear would alias.
        var minification = side / Math.Min(InputWidth, InputHeight);
        var sampling = minification > MipmapMinificationThreshold
            ? new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear)
            : new SKSamplingOptions(SKFilterMode.Linear);

        // Declared opaque so drawing neither blends nor premultiplies: the RGB values are taken as decoded.
        using var source = new SKPixmap(decoded.Info.WithAlphaType(SKAlphaType.Opaque), decoded.GetPixels(), decoded.RowBytes);
        using var sourceImage = SKImage.FromPixels(source);
        var targetInfo = new SKImageInfo(InputWidth, InputHeight, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var target = new SKBitmap(targetInfo);
        using (var canvas = new SKCanvas(target))
        {
            canvas.Clear(SKColors.Black);
            canvas.SetMatrix(transform);
            canvas.DrawImage(sourceImage, 0, 0, sampling);
        }

        WriteRgbAsUnitFloats(target, destination);
    }

    private void WriteRgbAsUnitFloats(SKBitmap target, Span<float> destination)
    {
        ReadOnlySpan<byte> pixels = target.GetPixelSpan();
        var rowBytes = target.RowBytes;
        var output = 0;
        for (var y = 0; y < InputHeight; y++)
        {
            var row = pixels.Slice(y * rowBytes, InputWidth * 4);
            if (Grayscale)
            {
                for (var x = 0; x < row.Length; x += 4)
                {
                    var luma = (0.299f * ByteToUnit[row[x]]) + (0.587f * ByteToUnit[row[x + 1]]) + (0.114f * ByteToUnit[row[x + 2]]);
                    destination[output++] = luma;
                    destination[output++] = luma;
                    destination[output++] = luma;
                }

                continue;
            }

            for (var x = 0; x < row.Length; x += 4)
            {
                destination[output++] = ByteToUnit[row[x]];
                destination[output++] = ByteToUnit[row[x + 1]];
                destination[output++] = ByteToUnit[row[x + 2]];
            }
        }
    }

    // byte / 255 exactly as float division gives it, looked up rather than divided per channel.
    private static float[] CreateByteToUnit()
    {
        var table = new float[256];
        for (var value = 0; value < table.Length; value++)
        {
            table[value] = value / 255f;
        }

        return table;
    }
}
