using SkiaSharp;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// Photo-like JPEGs (gradients, many soft shapes, fine grain) of a given size: their entropy, and so their
/// decoding cost, is close to a camera photo's, unlike flat synthetic scenes. --format png writes PNGs, and
/// --grain 0 leaves the grain out (a large PNG of a drawing, compressed well below MAX_IMAGE_BYTES).
/// </summary>
internal static class SyntheticImages
{
    public static int Run(Cli cli)
    {
        var folder = cli.Require("out");
        var count = cli.Int("count", 8);
        var width = cli.Int("width", 1024);
        var height = cli.Int("height", 768);
        var seed = cli.Int("seed", 1);
        var prefix = cli.Get("prefix", $"img{width}x{height}");
        var format = cli.Get("format", "jpg");
        var encoding = format == "png" ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg;
        var grain = cli.Int("grain", 10);
        var quality = cli.Int("quality", 90);
        Directory.CreateDirectory(folder);
        var written = 0;
        for (var i = 0; i < count; i++)
        {
            var path = Path.Combine(folder, $"{prefix}-{i:D5}.{format}");
            if (File.Exists(path))
            {
                continue;
            }

            File.WriteAllBytes(path, Create(width, height, seed * 100_003 + i, quality, grain, encoding));
            written++;
        }

        cli.Emit(new { folder, count, width, height, written });
        return 0;
    }

    public static byte[] Create(int width, int height, int seed, int quality = 90, int grain = 10, SKEncodedImageFormat format = SKEncodedImageFormat.Jpeg)
    {
        var random = new Random(seed);
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            using var background = new SKPaint();
            background.Shader = SKShader.CreateLinearGradient(
                new SKPoint(0, 0), new SKPoint(width, height), [RandomColor(random), RandomColor(random), RandomColor(random)], SKShaderTileMode.Clamp);
            canvas.DrawRect(0, 0, width, height, background);
            var scale = Math.Max(width, height) / 1024f;
            using var paint = new SKPaint { IsAntialias = true };
            for (var s = 0; s < 60; s++)
            {
                paint.Color = RandomColor(random).WithAlpha((byte)random.Next(90, 230));
                paint.MaskFilter = random.Next(3) == 0 ? SKMaskFilter.CreateBlur(SKBlurStyle.Normal, 6 * scale) : null;
                var x = random.Next(width);
                var y = random.Next(height);
                var size = (float)(random.Next(20, 220) * scale);
                switch (random.Next(3))
                {
                    case 0:
                        canvas.DrawCircle(x, y, size / 2, paint);
                        break;
                    case 1:
                        canvas.DrawRect(x, y, size, size * 0.6f, paint);
                        break;
                    default:
                        paint.StrokeWidth = Math.Max(2, size / 12);
                        canvas.DrawLine(x, y, x + size, y + (size / 2), paint);
                        break;
                }
            }
        }

        // Grain: photos are never smooth, and entropy is what JPEG decoding pays for.
        var pixels = bitmap.GetPixelSpan();
        for (var i = 0; i < pixels.Length; i += 4)
        {
            var noise = grain == 0 ? 0 : random.Next(-grain, grain + 1);
            pixels[i] = (byte)Math.Clamp(pixels[i] + noise, 0, 255);
            pixels[i + 1] = (byte)Math.Clamp(pixels[i + 1] + noise, 0, 255);
            pixels[i + 2] = (byte)Math.Clamp(pixels[i + 2] + noise, 0, 255);
        }

        using var data = bitmap.Encode(format, quality);
        return data.ToArray();
    }

    private static SKColor RandomColor(Random random) => new((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
}
