using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace ReverseImageSearch.Benchmarks;

/// <summary>--name value pairs, and helpers shared by the commands.</summary>
internal sealed class Cli
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public static Cli Parse(string[] args)
    {
        var cli = new Cli();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                var name = args[i][2..];
                var value = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "true";
                cli._values[name] = value;
            }
        }

        return cli;
    }

    public string Get(string name, string fallback) => _values.TryGetValue(name, out var value) ? value : fallback;

    public string Require(string name) => _values.TryGetValue(name, out var value) ? value : throw new ArgumentException($"--{name} is required");

    public int Int(string name, int fallback) => _values.TryGetValue(name, out var value) ? int.Parse(value, CultureInfo.InvariantCulture) : fallback;

    public double Double(string name, double fallback) => _values.TryGetValue(name, out var value) ? double.Parse(value, CultureInfo.InvariantCulture) : fallback;

    public bool Flag(string name) => _values.ContainsKey(name);

    public static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public void Emit(object result)
    {
        var text = JsonSerializer.Serialize(result, Json);
        if (_values.TryGetValue("json", out var path))
        {
            File.WriteAllText(path, text);
        }

        Console.WriteLine(text);
    }
}

/// <summary>The images under folders, as the model tools and benchmarks read them.</summary>
internal static class ImageFolders
{
    /// <summary>Image files (by extension) under each folder, in ordinal order, at most <paramref name="limit"/> per folder.</summary>
    public static string[] Files(IEnumerable<string> folders, int limit = int.MaxValue)
    {
        string[] extensions = [".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"];
        return folders.SelectMany(folder => Directory.GetFiles(folder, "*", SearchOption.AllDirectories)
                .Where(f => extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                .Order(StringComparer.Ordinal)
                .Take(limit))
            .ToArray();
    }
}

internal static class ProcessMemory
{
    /// <summary>A field of /proc/[pid]/status in bytes (VmRSS: resident now, VmHWM: peak resident).</summary>
    public static long Read(string field, int? pid = null)
    {
        var path = pid is null ? "/proc/self/status" : $"/proc/{pid}/status";
        foreach (var line in File.ReadLines(path))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                var kb = line[(field.Length + 1)..].Trim().Split(' ')[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
            }
        }

        return 0;
    }

    public static double Mib(long bytes) => Math.Round(bytes / 1048576.0, 1);
}

internal static class Timing
{
    public static double Percentile(List<double> sorted, double p)
    {
        if (sorted.Count == 0)
        {
            return double.NaN;
        }

        var rank = (int)Math.Ceiling(p / 100 * sorted.Count) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Count - 1)];
    }

    public static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}
