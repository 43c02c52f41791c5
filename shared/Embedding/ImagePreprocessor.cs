using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using SkiaSharp;

namespace ReverseImageSearch.Embedding;

/// <summary>What became of one encoded image: a rejection reason, or the size it was decoded at.</summary>
/// <param name="DecodedWidth">Width of the decoded (possibly reduced-scale, not yet oriented) pixels; 0 when rejected.</param>
/// <param name="DecodedHeight">Height of the decoded pixels; 0 when rejected.</param>
public readonly record struct PreprocessResult(string? RejectionReason, int DecodedWidth, int DecodedHeight)
{
    private readonly IReadOnlyList<string>? _views;

    public bool IsRejected => RejectionReason is not null;

    /// <summary>
    /// The views drawn after the image's own tensor, in order (<see cref="ImagePreprocessor.PreprocessWithViews"/>);
    /// empty otherwise.
    /// </summary>
    public IReadOnlyList<string> Views
    {
        get => _views ?? [];
        init => _views = value;
    }

    public static PreprocessResult Rejected(string reason) => new(reason, 0, 0);
}

/// <summary>
/// Turns encoded image bytes into the model input: upright, centre square crop, resized to
/// InputHeight x InputWidth, RGB (or its luma in all three channels) as float32 NHWC in [0, 1]; on request also the
/// image's views (<see cref="ImageViews"/>), each a square of the same upright picture drawn the same way.
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

    /// <summary>The most tensors <see cref="PreprocessWithViews"/> writes for one image: its own and every view.</summary>
    public static int MaxTensorsPerImage => 1 + ImageViews.Names.Count;

    /// <summary>A picture whose long side is more than this many times its short side also has the end squares.</summary>
    public const float EndSquaresAspectRatio = 1.25f;

    /// <summary>The side of the zoom view, as a fraction of the centre square's.</summary>
    public const float ZoomScale = 0.7f;

    /// <summary>
    /// The views of an upright picture of <paramref name="width"/> x <paramref name="height"/>, each as its square
    /// in those coordinates: the squares at the start and end of the long side (left and right of a wide picture,
    /// top and bottom of a tall one) when the long side is more than <see cref="EndSquaresAspectRatio"/> times the
    /// short one, and always the centre square at <see cref="ZoomScale"/> of its side.
    /// </summary>
    public static IReadOnlyList<(string Name, SKRect Square)> ViewSquares(float width, float height)
    {
        var shortSide = Math.Min(width, height);
        var zoomSide = ZoomScale * shortSide;
        var zoom = (ImageViews.CenterZoom, SKRect.Create((width - zoomSide) / 2, (height - zoomSide) / 2, zoomSide, zoomSide));
        if (Math.Max(width, height) <= EndSquaresAspectRatio * shortSide)
        {
            return [zoom];
        }

        var end = width >= height
            ? SKRect.Create(width - shortSide, 0, shortSide, shortSide)
            : SKRect.Create(0, height - shortSide, shortSide, shortSide);
        return [(ImageViews.StartSquare, SKRect.Create(0, 0, shortSide, shortSide)), (ImageViews.EndSquare, end), zoom];
    }

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

        return Decode(encoded, destination, withViews: false);
    }

    /// <summary>
    /// As <see cref="Preprocess"/> (the image's own tensor exactly as it gives it), then one tensor per view of
    /// <see cref="ViewSquares"/> (named in order by the result's <see cref="PreprocessResult.Views"/>), into
    /// <paramref name="destination"/> of <see cref="MaxTensorsPerImage"/> x <see cref="TensorLength"/> floats.
    /// </summary>
    public PreprocessResult PreprocessWithViews(ReadOnlyMemory<byte> encoded, Span<float> destination)
    {
        if (destination.Length != MaxTensorsPerImage * TensorLength)
        {
            throw new ArgumentException(
                $"The destination must hold {MaxTensorsPerImage * TensorLength} floats, not {destination.Length}.", nameof(destination));
        }

        return Decode(encoded, destination, withViews: true);
    }

    private PreprocessResult Decode(ReadOnlyMemory<byte> encoded, Span<float> destination, bool withViews)
    {
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

        using var target = new SKBitmap(new SKImageInfo(InputWidth, InputHeight, SKColorType.Rgba8888, SKAlphaType.Opaque));
        // The image's own vector comes from the decode a query of the same file gets, so storing views never changes it.
        var ownSize = ChooseDecodeSize(codec, 1);
        // The views come from a decode whose short side is at least twice the zoom view's need (2 x 224 / 0.7 = 640 px): a
        // JPEG's coarser DCT-scaled decodes cost the copy set 7 luma queries of 640 (BENCHMARKS.md 6b). A second decode
        // only where the codec scales (JPEG, WebP) and the sizes differ.
        var viewSize = withViews ? ChooseDecodeSize(codec, ZoomScale / 2) : ownSize;
        var names = DecodeAndDraw(codec, ownSize, target, destination, drawOwn: true, drawViews: withViews && viewSize == ownSize);
        if (withViews && viewSize != ownSize && names is not null)
        {
            names = DecodeAndDraw(codec, viewSize, target, destination, drawOwn: false, drawViews: true);
        }

        return names is null
            ? PreprocessResult.Rejected(ImageRejections.TruncatedOrCorrupt)
            : new PreprocessResult(null, ownSize.Width, ownSize.Height) { Views = names };
    }

    /// <summary>
    /// Decodes the picture at <paramref name="size"/> and draws its upright centre square into the first tensor of
    /// <paramref name="destination"/> and/or its views (<see cref="ViewSquares"/>) into the tensors after it.
    /// Returns the names of the views drawn (none unless <paramref name="drawViews"/>), or null when the decode fails.
    /// </summary>
    private string[]? DecodeAndDraw(SKCodec codec, SKSizeI size, SKBitmap target, Span<float> destination, bool drawOwn, bool drawViews)
    {
        using var admitted = _decodedPixels.Acquire((long)size.Width * size.Height);
        // Unpremultiplied so that colour survives under any alpha; alpha itself is then ignored (the model takes RGB).
        var decodeInfo = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var decoded = new SKBitmap(decodeInfo, SKBitmapAllocFlags.ZeroPixels);
        // First frame only (GIF); anything but complete success, partial images included, is refused.
        var result = codec.GetPixels(decodeInfo, decoded.GetPixels(), decoded.RowBytes, new SKCodecOptions(SKZeroInitialized.Yes));
        if (result != SKCodecResult.Success)
        {
            return null;
        }

        var origin = codec.EncodedOrigin;
        var swaps = ImageOrientation.SwapsAxes(origin);
        float uprightWidth = swaps ? decoded.Height : decoded.Width;
        float uprightHeight = swaps ? decoded.Width : decoded.Height;
        var storedToUpright = ImageOrientation.StoredToUpright(origin, decoded.Width, decoded.Height);

        // Declared opaque so drawing neither blends nor premultiplies: the RGB values are taken as decoded.
        using var source = new SKPixmap(decoded.Info.WithAlphaType(SKAlphaType.Opaque), decoded.GetPixels(), decoded.RowBytes);
        using var sourceImage = SKImage.FromPixels(source);
        if (drawOwn)
        {
            var side = Math.Min(uprightWidth, uprightHeight);
            var center = SKRect.Create((uprightWidth - side) / 2, (uprightHeight - side) / 2, side, side);
            DrawUprightSquare(sourceImage, storedToUpright, center, target, destination[..TensorLength]);
        }

        if (!drawViews)
        {
            return [];
        }

        var views = ViewSquares(uprightWidth, uprightHeight);
        var names = new string[views.Count];
        for (var i = 0; i < views.Count; i++)
        {
            names[i] = views[i].Name;
            DrawUprightSquare(sourceImage, storedToUpright, views[i].Square, target, destination.Slice((1 + i) * TensorLength, TensorLength));
        }

        return names;
    }

    /// <summary>
    /// The smallest size the codec can decode at directly (JPEG and WebP scale by eighths while decoding) whose
    /// shorter side still covers the model input at <paramref name="smallestSquare"/> of that side, so a 12-megapixel
    /// photo is never decoded at full size.
    /// </summary>
    private SKSizeI ChooseDecodeSize(SKCodec codec, float smallestSquare)
    {
        var needed = Math.Max(InputHeight, InputWidth) / smallestSquare;
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

    /// <summary>
    /// Draws <paramref name="square"/> (in upright coordinates) of the decoded picture onto the model input through
    /// <paramref name="target"/>, and writes it into <paramref name="destination"/>.
    /// </summary>
    private void DrawUprightSquare(SKImage sourceImage, SKMatrix storedToUpright, SKRect square, SKBitmap target, Span<float> destination)
    {
        var scaleX = InputWidth / square.Width;
        var scaleY = InputHeight / square.Height;

        // Stored pixels -> upright -> the square moved to the origin -> scaled onto the model input.
        var squareToInput = SKMatrix.CreateScaleTranslation(scaleX, scaleY, -scaleX * square.Left, -scaleY * square.Top);
        var transform = SKMatrix.Concat(squareToInput, storedToUpright);

        // Bilinear as the original; with trilinear mipmaps once shrinking by more than 2x, where bilinear would alias.
        var minification = square.Width / Math.Min(InputWidth, InputHeight);
        var sampling = minification > MipmapMinificationThreshold
            ? new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear)
            : new SKSamplingOptions(SKFilterMode.Linear);

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
