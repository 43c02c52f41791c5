using ReverseImageSearch.Tests.Embedding;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>Inputs that are not usable images, each with the reason the product must give.</summary>
internal static class BadImages
{
    public static IReadOnlyList<(string Name, byte[] Bytes)> All(byte[] validJpeg) =>
    [
        ("zero-bytes.jpg", []),
        ("not-an-image.png", "plain text, not pixels"u8.ToArray()),
        ("truncated.jpg", validJpeg[..(validJpeg.Length / 2)]),
        ("bomb.png", TestImages.BuildPng(("IHDR", TestImages.PngHeader(50_000, 50_000)), ("IDAT", []), ("IEND", []))),
    ];
}
