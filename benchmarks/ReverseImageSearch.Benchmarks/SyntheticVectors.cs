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
        var count = cli.Int("count", 10_000);
        var dimensions = cli.Int("dims", 1280);
        var queriesPath = cli.Require("queries-out");
        // Rows go to stdout (binary) or to --out FILE; 100k rows are 512 MB, so the anchor reads them from a pipe.
        using var rows = cli.Get("out", "-") == "-" ? Console.OpenStandardOutput() : File.Create(cli.Get("out", "-"));
        var queries = Generate(count, dimensions, cli.Int("queries", 200), (_, row) => rows.Write(MemoryMarshal.AsBytes(row.AsSpan())));
        using var queryFile = File.Create(queriesPath);
        foreach (var query in queries)
        {
            queryFile.Write(MemoryMarshal.AsBytes(query.AsSpan()));
        }

        return 0;
    }

    /// <summary>Calls <paramref name="onRow"/> with every row (the array is reused) and returns the queries.</summary>
    public static float[][] Generate(int count, int dimensions, int queryCount, Action<int, float[]> onRow)
    {
        var random = new XorShift(12345);
        var centres = Enumerable.Range(0, Math.Max(1, count / 100)).Select(_ => Centre(random, dimensions)).ToArray();
        var row = new float[dimensions];
        var kept = new List<float[]>();
        for (var i = 0; i < count; i++)
        {
            Sample(random, centres[random.Next(centres.Length)], row, noise: 0.6f);
            onRow(i, row);
            if (i % Math.Max(1, count / queryCount) == 0 && kept.Count < queryCount / 2)
            {
                kept.Add(row.ToArray());
            }
        }

        var queries = new float[queryCount][];
        for (var q = 0; q < queryCount; q++)
        {
            var query = new float[dimensions];
            if (q < kept.Count)
            {
                // A near copy: the stored vector plus a little noise, renormalised.
                for (var d = 0; d < dimensions; d++)
                {
                    query[d] = Math.Max(0, kept[q][d] + (0.01f * random.NextSigned()));
                }

                Normalize(query);
            }
            else
            {
                Sample(random, centres[random.Next(centres.Length)], query, noise: 0.6f);
            }

            queries[q] = query;
        }

        return queries;
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
