using System.Runtime.InteropServices;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// Unit vectors shaped like this model's embeddings (non-negative, sparse-ish, clustered): each is a ReLU of a
/// cluster centre plus noise, L2-normalised. Queries are half near copies of stored vectors (copy detection),
/// half fresh vectors. Written as raw little-endian float32 rows so numpy reads the very same numbers.
/// </summary>
internal static class SyntheticVectors
{
    public static int Run(Cli cli)
    {
        var folder = cli.Require("out");
        var count = cli.Int("count", 10_000);
        var dimensions = cli.Int("dims", 1280);
        var queries = cli.Int("queries", 200);
        Directory.CreateDirectory(folder);
        var random = new XorShift(12345);
        var centres = Enumerable.Range(0, Math.Max(1, count / 100)).Select(_ => Centre(random, dimensions)).ToArray();
        var vectorsPath = Path.Combine(folder, $"vectors-{count}x{dimensions}.f32");
        var row = new float[dimensions];
        var kept = new List<float[]>();
        using (var stream = File.Create(vectorsPath))
        {
            for (var i = 0; i < count; i++)
            {
                Sample(random, centres[random.Next(centres.Length)], row, noise: 0.6f);
                stream.Write(MemoryMarshal.AsBytes(row.AsSpan()));
                if (i % Math.Max(1, count / queries) == 0 && kept.Count < queries / 2)
                {
                    kept.Add(row.ToArray());
                }
            }
        }

        var queriesPath = Path.Combine(folder, $"queries-{count}x{dimensions}.f32");
        using (var stream = File.Create(queriesPath))
        {
            for (var q = 0; q < queries; q++)
            {
                if (q < kept.Count)
                {
                    // A near copy: the stored vector plus a little noise, renormalised.
                    for (var d = 0; d < dimensions; d++)
                    {
                        row[d] = Math.Max(0, kept[q][d] + (0.01f * random.NextSigned()));
                    }

                    Normalize(row);
                }
                else
                {
                    Sample(random, centres[random.Next(centres.Length)], row, noise: 0.6f);
                }

                stream.Write(MemoryMarshal.AsBytes(row.AsSpan()));
            }
        }

        cli.Emit(new { vectors = vectorsPath, queries = queriesPath, count, dimensions, queryCount = queries });
        return 0;
    }

    public static float[] ReadRows(string path, int dimensions, int first, int rows)
    {
        var values = new float[rows * dimensions];
        using var stream = File.OpenRead(path);
        stream.Seek((long)first * dimensions * sizeof(float), SeekOrigin.Begin);
        stream.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    public static int RowCount(string path, int dimensions) => (int)(new FileInfo(path).Length / (dimensions * sizeof(float)));

    private static float[] Centre(XorShift random, int dimensions)
    {
        var centre = new float[dimensions];
        for (var d = 0; d < dimensions; d++)
        {
            // Most features of a ReLU network are small; a few are large.
            var u = random.NextFloat();
            centre[d] = u < 0.6f ? 0 : -MathF.Log(1 - random.NextFloat()) * 1.5f;
        }

        return centre;
    }

    private static void Sample(XorShift random, float[] centre, float[] row, float noise)
    {
        for (var d = 0; d < row.Length; d++)
        {
            row[d] = Math.Max(0, centre[d] + (noise * random.NextSigned() * 1.7f));
        }

        Normalize(row);
    }

    private static void Normalize(float[] row)
    {
        var norm = System.Numerics.Tensors.TensorPrimitives.Norm<float>(row);
        if (norm > 0)
        {
            System.Numerics.Tensors.TensorPrimitives.Divide(row, norm, row);
        }
    }
}

internal sealed class XorShift(ulong seed)
{
    private ulong _state = seed == 0 ? 0x9E3779B97F4A7C15 : seed;

    public ulong NextULong()
    {
        _state ^= _state << 13;
        _state ^= _state >> 7;
        _state ^= _state << 17;
        return _state;
    }

    public float NextFloat() => (NextULong() >> 40) / (float)(1 << 24);

    public float NextSigned() => (NextFloat() * 2) - 1;

    public int Next(int max) => (int)(NextULong() % (ulong)max);
}
