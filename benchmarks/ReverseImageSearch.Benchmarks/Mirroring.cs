using SkiaSharp;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// Mirror invariance as measured here (the product has no such option): an image's vector averaged with the vector of
/// its left-right mirrored copy and made unit length again, so a mirrored copy gets nearly the same vector.
/// </summary>
internal static class Mirroring
{
    /// <summary>The image mirrored left to right, as a lossless PNG. EXIF orientation is not applied (the datasets
    /// here carry none).</summary>
    public static byte[] MirroredPng(byte[] encoded)
    {
        using var bitmap = SKBitmap.Decode(encoded) ?? throw new InvalidOperationException("cannot decode the image to mirror");
        using var image = SKImage.FromBitmap(bitmap);
        using var mirrored = new SKBitmap(bitmap.Width, bitmap.Height);
        using (var canvas = new SKCanvas(mirrored))
        {
            canvas.Scale(-1, 1, bitmap.Width / 2f, 0);
            canvas.DrawImage(image, 0, 0, new SKSamplingOptions(SKFilterMode.Nearest), null);
        }

        using var data = mirrored.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>The unit-length mean of an image's vector and its mirror's.</summary>
    public static float[] Average(float[] vector, float[] mirrored)
    {
        var mean = new float[vector.Length];
        for (var d = 0; d < mean.Length; d++)
        {
            mean[d] = (vector[d] + mirrored[d]) * 0.5f;
        }

        var norm = MathF.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot<float>(mean, mean));
        System.Numerics.Tensors.TensorPrimitives.Divide(mean, norm, mean);
        return mean;
    }
}
