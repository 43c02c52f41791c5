using System.Text.RegularExpressions;

namespace ReverseImageSearch.Local.Storage;

/// <summary>The rules that map bucket and object names onto folders and files.</summary>
internal static partial class ObjectNames
{
    /// <summary>Rejects names that could escape the bucket folder or that a folder cannot hold.</summary>
    public static void Validate(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Contains('\\', StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Object name '{name}' contains a backslash or NUL.", nameof(name));
        }

        if (name.StartsWith('/') || Path.IsPathRooted(name))
        {
            throw new ArgumentException($"Object name '{name}' is an absolute path.", nameof(name));
        }

        foreach (var segment in name.Split('/'))
        {
            if (segment.Length == 0 || segment == "." || segment == "..")
            {
                throw new ArgumentException($"Object name '{name}' has an empty, '.' or '..' segment.", nameof(name));
            }
        }
    }

    public static void ValidateBucket(string bucket)
    {
        ArgumentException.ThrowIfNullOrEmpty(bucket);
        if (!BucketNamePattern().IsMatch(bucket))
        {
            throw new ArgumentException($"Bucket name '{bucket}' must be letters, digits, '-', '_' or '.', starting with a letter or digit.", nameof(bucket));
        }
    }

    /// <summary>Hidden and temporary files (any segment starting with '.') are not objects.</summary>
    public static bool IsHidden(string name) => name.StartsWith('.') || name.Contains("/.", StringComparison.Ordinal);

    public static string ContentTypeFor(string name) =>
        Path.GetExtension(name).ToUpperInvariant() switch
        {
            ".JPG" or ".JPEG" => "image/jpeg",
            ".PNG" => "image/png",
            ".GIF" => "image/gif",
            ".BMP" => "image/bmp",
            ".WEBP" => "image/webp",
            ".JSON" => "application/json",
            _ => "application/octet-stream",
        };

    /// <summary>Cloud Storage generations are integers that grow on every overwrite; here the file's
    /// last-write time in microseconds since the Unix epoch plays that role.</summary>
    public static long GenerationOf(DateTime lastWriteTimeUtc) =>
        (lastWriteTimeUtc.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerMicrosecond;

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex BucketNamePattern();
}
