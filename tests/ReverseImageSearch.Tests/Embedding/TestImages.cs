using System.Buffers.Binary;
using SkiaSharp;

namespace ReverseImageSearch.Tests.Embedding;

/// <summary>Synthetic pictures and hand-made encodings for the embedding tests.</summary>
internal static class TestImages
{
    /// <summary>
    /// A smooth, asymmetric picture (gradient sky, a sun, a hill, a bar), laid out in proportion to the size so that
    /// the same scene can be rendered at different resolutions. <paramref name="variant"/> moves and recolours it.
    /// </summary>
    public static SKBitmap DrawScene(int width, int height, int variant = 0)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using var canvas = new SKCanvas(bitmap);
        float w = width, h = height;
        var hue = variant * 47 % 360;
        using (var sky = new SKPaint())
        {
            sky.Shader = SKShader.CreateLinearGradient(
                new SKPoint(0, 0), new SKPoint(w * 0.3f, h),
                [SKColor.FromHsv(hue, 70, 95), SKColor.FromHsv((hue + 40) % 360, 40, 60)], SKShaderTileMode.Clamp);
            canvas.DrawRect(0, 0, w, h, sky);
        }

        using var paint = new SKPaint { IsAntialias = true };
        paint.Color = SKColor.FromHsv((hue + 180) % 360, 90, 100);
        canvas.DrawCircle(w * (0.25f + 0.1f * (variant % 3)), h * 0.3f, Math.Min(w, h) * 0.15f, paint);
        paint.Color = SKColor.FromHsv((hue + 100) % 360, 80, 50);
        canvas.DrawOval(new SKRect(w * 0.4f, h * 0.6f, w * 1.2f, h * 1.3f), paint);
        paint.Color = SKColor.FromHsv((hue + 250) % 360, 60, 30);
        canvas.DrawRect(w * 0.05f, h * 0.55f, w * 0.3f, h * 0.08f, paint);
        return bitmap;
    }

    public static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format, int quality = 90)
    {
        using var data = bitmap.Encode(format, quality);
        return data.ToArray();
    }

    /// <summary>
    /// The pixels a camera stores for an upright picture when it tags them with EXIF <paramref name="orientation"/>
    /// (1 to 8): each stored pixel (x, y) is the upright pixel the EXIF definition sends it to.
    /// </summary>
    public static SKBitmap ToStoredPixels(SKBitmap upright, int orientation)
    {
        var swap = orientation >= 5;
        int sw = swap ? upright.Height : upright.Width, sh = swap ? upright.Width : upright.Height;
        var stored = new SKBitmap(new SKImageInfo(sw, sh, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var from = upright.GetPixelSpan();
        var to = stored.GetPixelSpan();
        for (var y = 0; y < sh; y++)
        {
            for (var x = 0; x < sw; x++)
            {
                // Where stored row 0 and column 0 appear upright: 2 mirrors, 3 turns half, 6 puts row 0 on the right, ...
                var (ux, uy) = orientation switch
                {
                    2 => (sw - 1 - x, y),
                    3 => (sw - 1 - x, sh - 1 - y),
                    4 => (x, sh - 1 - y),
                    5 => (y, x),
                    6 => (sh - 1 - y, x),
                    7 => (sh - 1 - y, sw - 1 - x),
                    8 => (y, sw - 1 - x),
                    _ => (x, y),
                };
                from.Slice(((uy * upright.Width) + ux) * 4, 4).CopyTo(to.Slice(((y * sw) + x) * 4, 4));
            }
        }

        return stored;
    }

    /// <summary>A JPEG with an Exif APP1 segment carrying only the orientation tag, inserted right after SOI.</summary>
    public static byte[] WithExifOrientation(byte[] jpeg, ushort orientation)
    {
        // TIFF body, big-endian: header, IFD0 with one entry (0x0112 Orientation, SHORT, count 1), no next IFD.
        byte[] tiff =
        [
            (byte)'M', (byte)'M', 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08,
            0x00, 0x01,
            0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, (byte)(orientation >> 8), (byte)orientation, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00,
        ];
        var payload = "Exif\0\0"u8.ToArray().Concat(tiff).ToArray();
        var segment = new byte[4 + payload.Length];
        segment[0] = 0xFF;
        segment[1] = 0xE1;
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), (ushort)(payload.Length + 2));
        payload.CopyTo(segment, 4);
        return [.. jpeg.AsSpan(0, 2), .. segment, .. jpeg.AsSpan(2)];
    }

    /// <summary>An uncompressed 24-bit bottom-up BMP.</summary>
    public static byte[] EncodeBmp(SKBitmap bitmap)
    {
        int w = bitmap.Width, h = bitmap.Height;
        var rowSize = ((w * 3) + 3) & ~3;
        var bmp = new byte[54 + (rowSize * h)];
        var span = bmp.AsSpan();
        span[0] = (byte)'B';
        span[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(span[2..], bmp.Length);
        BinaryPrimitives.WriteInt32LittleEndian(span[10..], 54);
        BinaryPrimitives.WriteInt32LittleEndian(span[14..], 40);
        BinaryPrimitives.WriteInt32LittleEndian(span[18..], w);
        BinaryPrimitives.WriteInt32LittleEndian(span[22..], h);
        BinaryPrimitives.WriteInt16LittleEndian(span[26..], 1);
        BinaryPrimitives.WriteInt16LittleEndian(span[28..], 24);
        BinaryPrimitives.WriteInt32LittleEndian(span[34..], rowSize * h);
        var pixels = bitmap.GetPixelSpan();
        for (var y = 0; y < h; y++)
        {
            var row = span.Slice(54 + ((h - 1 - y) * rowSize));
            for (var x = 0; x < w; x++)
            {
                var rgba = pixels.Slice(((y * w) + x) * 4, 4);
                row[(x * 3) + 0] = rgba[2];
                row[(x * 3) + 1] = rgba[1];
                row[(x * 3) + 2] = rgba[0];
            }
        }

        return bmp;
    }

    /// <summary>The 256 colours of a 3-3-2 RGB palette, the GIF test's colour table.</summary>
    public static SKColor PaletteColor(int index) =>
        new((byte)((index >> 5) * 255 / 7), (byte)(((index >> 2) & 7) * 255 / 7), (byte)((index & 3) * 255 / 3));

    private static int NearestPaletteIndex(SKColor color) =>
        (((color.Red * 7) + 127) / 255 << 5) | (((color.Green * 7) + 127) / 255 << 2) | (((color.Blue * 3) + 127) / 255);

    /// <summary>The bitmap reduced to <see cref="PaletteColor"/> colours, and the palette index of every pixel.</summary>
    public static (SKBitmap Bitmap, byte[] Indices) Quantize(SKBitmap source)
    {
        var quantized = new SKBitmap(source.Info);
        var indices = new byte[source.Width * source.Height];
        for (var y = 0; y < source.Height; y++)
        {
            for (var x = 0; x < source.Width; x++)
            {
                var index = NearestPaletteIndex(source.GetPixel(x, y));
                indices[(y * source.Width) + x] = (byte)index;
                quantized.SetPixel(x, y, PaletteColor(index));
            }
        }

        return (quantized, indices);
    }

    /// <summary>
    /// A GIF89a of palette indices, one frame per index array (more than one makes it animated). The LZW stream
    /// sends every pixel as a literal 9-bit code and a clear code before the code table would outgrow 9 bits:
    /// valid LZW, just not compressed.
    /// </summary>
    public static byte[] EncodeGif(int width, int height, byte[] indices, params byte[][] laterFrames)
    {
        const int ClearCode = 256, EndCode = 257, LiteralsPerClear = 250;
        var output = new List<byte>();
        output.AddRange("GIF89a"u8.ToArray());
        AddUInt16(output, width);
        AddUInt16(output, height);
        output.AddRange([0xF7, 0x00, 0x00]); // global colour table of 2^(7+1) entries
        for (var i = 0; i < 256; i++)
        {
            var color = PaletteColor(i);
            output.AddRange([color.Red, color.Green, color.Blue]);
        }

        foreach (var frame in laterFrames.Prepend(indices))
        {
            if (laterFrames.Length > 0)
            {
                output.AddRange([0x21, 0xF9, 0x04, 0x00, 0x32, 0x00, 0x00, 0x00]); // graphic control: 0.5 s per frame
            }

            output.Add(0x2C);
            AddUInt16(output, 0);
            AddUInt16(output, 0);
            AddUInt16(output, width);
            AddUInt16(output, height);
            output.Add(0x00);
            output.Add(8); // LZW minimum code size

            var codes = new BitWriter();
            for (var i = 0; i < frame.Length; i++)
            {
                if (i % LiteralsPerClear == 0)
                {
                    codes.Write(ClearCode, 9);
                }

                codes.Write(frame[i], 9);
            }

            codes.Write(EndCode, 9);
            var stream = codes.ToArray();
            for (var offset = 0; offset < stream.Length; offset += 255)
            {
                var length = Math.Min(255, stream.Length - offset);
                output.Add((byte)length);
                output.AddRange(stream.AsSpan(offset, length).ToArray());
            }

            output.Add(0x00);
        }

        output.Add(0x3B);
        return [.. output];
    }

    /// <summary>A PNG made of the given chunks (type and data), each with its length and CRC.</summary>
    public static byte[] BuildPng(params (string Type, byte[] Data)[] chunks)
    {
        var output = new List<byte> { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A };
        foreach (var (type, data) in chunks)
        {
            var typeAndData = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
            var buffer = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(buffer, data.Length);
            output.AddRange(buffer);
            output.AddRange(typeAndData);
            BinaryPrimitives.WriteUInt32BigEndian(buffer, Crc32(typeAndData));
            output.AddRange(buffer);
        }

        return [.. output];
    }

    /// <summary>IHDR data for an 8-bit RGB, non-interlaced image.</summary>
    public static byte[] PngHeader(int width, int height)
    {
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8;
        header[9] = 2;
        return header;
    }

    private static uint Crc32(byte[] bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var bit = 0; bit < 8; bit++)
            {
                crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
            }
        }

        return ~crc;
    }

    private static void AddUInt16(List<byte> output, int value)
    {
        output.Add((byte)value);
        output.Add((byte)(value >> 8));
    }

    /// <summary>Packs codes least significant bit first, as GIF's LZW stream requires.</summary>
    private sealed class BitWriter
    {
        private readonly List<byte> _bytes = [];
        private int _pending;
        private int _pendingBits;

        public void Write(int code, int bits)
        {
            _pending |= code << _pendingBits;
            _pendingBits += bits;
            while (_pendingBits >= 8)
            {
                _bytes.Add((byte)_pending);
                _pending >>= 8;
                _pendingBits -= 8;
            }
        }

        public byte[] ToArray()
        {
            if (_pendingBits > 0)
            {
                _bytes.Add((byte)_pending);
            }

            return [.. _bytes];
        }
    }
}
