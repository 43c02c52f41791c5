using SkiaSharp;

namespace ReverseImageSearch.Emulator;

/// <summary>
/// The sample set a fresh machine searches when no --images folder is given: small synthetic scenes
/// (shapes on backgrounds, in several colours) drawn once into the data folder, so the first run
/// needs no download and no licensed photos.
/// </summary>
public static class SampleImages
{
    private static readonly (string Name, SKColor Color)[] Palette =
    [
        ("red", new SKColor(220, 40, 40)), ("orange", new SKColor(240, 140, 20)), ("yellow", new SKColor(235, 210, 40)),
        ("green", new SKColor(40, 160, 70)), ("teal", new SKColor(20, 150, 150)), ("blue", new SKColor(40, 80, 210)),
        ("purple", new SKColor(130, 50, 180)), ("pink", new SKColor(230, 100, 170)),
    ];

    private static readonly string[] Shapes = ["circle", "square", "diamond", "stripes", "rings"];

    /// <summary>Draws the sample set into <paramref name="folder"/> unless it is there already; returns the folder.</summary>
    public static string EnsureCreated(string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var (shape, (colorName, color)) in Shapes.SelectMany(s => Palette.Select(p => (s, p))))
        {
            var path = Path.Combine(folder, $"{shape}-{colorName}.jpg");
            if (File.Exists(path))
            {
                continue;
            }

            using var bitmap = Draw(shape, color, seed: HashCode.Combine(shape.Length, colorName.Length, color.Red));
            using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
            var temporary = path + ".tmp";
            File.WriteAllBytes(temporary, data.ToArray());
            File.Move(temporary, path, overwrite: true);
        }

        return folder;
    }

    private static SKBitmap Draw(string shape, SKColor color, int seed)
    {
        const int size = 480;
        var bitmap = new SKBitmap(size, size);
        using var canvas = new SKCanvas(bitmap);
        var random = new Random(seed);
        using (var background = new SKPaint())
        {
            background.Shader = SKShader.CreateLinearGradient(
                new SKPoint(0, 0), new SKPoint(size, size),
                [new SKColor(245, 245, 240), new SKColor(200, 205, 215)], SKShaderTileMode.Clamp);
            canvas.DrawRect(0, 0, size, size, background);
        }

        using var paint = new SKPaint { Color = color, IsAntialias = true };
        var center = new SKPoint(size / 2f + random.Next(-40, 40), size / 2f + random.Next(-40, 40));
        switch (shape)
        {
            case "circle":
                canvas.DrawCircle(center, 150, paint);
                break;
            case "square":
                canvas.DrawRect(center.X - 140, center.Y - 140, 280, 280, paint);
                break;
            case "diamond":
                canvas.Save();
                canvas.RotateDegrees(45, center.X, center.Y);
                canvas.DrawRect(center.X - 120, center.Y - 120, 240, 240, paint);
                canvas.Restore();
                break;
            case "stripes":
                for (var x = 0; x < size; x += 60)
                {
                    canvas.DrawRect(x, 0, 30, size, paint);
                }

                break;
            default:
                paint.Style = SKPaintStyle.Stroke;
                paint.StrokeWidth = 22;
                for (var r = 40; r < 230; r += 48)
                {
                    canvas.DrawCircle(center, r, paint);
                }

                break;
        }

        return bitmap;
    }
}
