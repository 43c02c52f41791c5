using System.Numerics.Tensors;

namespace ReverseImageSearch.Local.VectorIndex;

/// <summary>
/// Approximate-then-rescored inner-product search in less memory than the float32 vectors: each row is kept as
/// int8 codes with one scale (symmetric, per row) for the scan, and as float16 for rescoring. A query is
/// quantised the same way, every row gets an integer dot product (AVX-VNNI where the CPU has it), the best
/// <c>candidates</c> rows are rescored with their float16 values widened to float32, and the top k of those are
/// returned, largest inner product first. Memory: 3 bytes a dimension (int8 + float16) plus 8 bytes a row,
/// against 4 bytes a dimension for the float32 vectors. Ranks by inner product (DOT_PRODUCT_DISTANCE, and
/// COSINE_DISTANCE on unit vectors). Build it once, then search from many threads; adds are not thread-safe.
/// </summary>
public sealed class QuantizedVectorSearch
{
    private const int MinRowsPerPartition = 2048;

    private readonly Int8RowCodes _codes;
    private Half[] _halves;
    private string[] _ids;

    public QuantizedVectorSearch(int dimensions, int capacity = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dimensions);
        Dimensions = dimensions;
        _codes = new Int8RowCodes(dimensions, capacity);
        _halves = new Half[_codes.Capacity * dimensions];
        _ids = new string[_codes.Capacity];
    }

    public int Dimensions { get; }

    public int Count => _codes.Count;

    /// <summary>Bytes held for the vectors (codes, halves, scales, sums), ids excluded.</summary>
    public long VectorBytes => _codes.Bytes + ((long)_halves.Length * 2);

    public void Add(string id, ReadOnlySpan<float> vector) => SetRow(Count, id, vector);

    /// <summary>Replaces row <paramref name="row"/>, or appends when it is <see cref="Count"/>.</summary>
    internal void SetRow(int row, string id, ReadOnlySpan<float> vector)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(row, Count);
        if (vector.Length != Dimensions)
        {
            throw new ArgumentException($"The vector has {vector.Length} dimensions; the search has {Dimensions}.", nameof(vector));
        }

        _codes.Set(row, vector);
        if (_ids.Length < _codes.Capacity)
        {
            Array.Resize(ref _halves, _codes.Capacity * Dimensions);
            Array.Resize(ref _ids, _codes.Capacity);
        }

        _ids[row] = id;
        TensorPrimitives.ConvertToHalf(vector, _halves.AsSpan(row * Dimensions, Dimensions));
    }

    /// <summary>Swap-remove: the last row moves into <paramref name="row"/> (as the float index does) and the count drops.</summary>
    internal void MoveLastInto(int row)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Count);
        var last = Count - 1;
        _codes.MoveLastInto(row);
        if (row != last)
        {
            _halves.AsSpan(last * Dimensions, Dimensions).CopyTo(_halves.AsSpan(row * Dimensions, Dimensions));
            _ids[row] = _ids[last];
        }

        _ids[last] = null!;
    }

    /// <summary>The <paramref name="k"/> rows of largest inner product with <paramref name="query"/>, largest first.</summary>
    /// <param name="candidates">Rows rescored from float16 after the int8 scan; at least <paramref name="k"/>.</param>
    public IReadOnlyList<VectorMatch> Search(ReadOnlySpan<float> query, int k, int candidates = 0)
    {
        if (query.Length != Dimensions)
        {
            throw new ArgumentException($"The query has {query.Length} dimensions; the search has {Dimensions}.", nameof(query));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(k);
        k = Math.Min(k, Count);
        if (k == 0)
        {
            return [];
        }

        candidates = Math.Min(Count, Math.Max(k, candidates > 0 ? candidates : Math.Max(64, 8 * k)));

        // The query as unsigned bytes (int8 code + 128); the row's code sum takes the 128 back out.
        var signed = new sbyte[_codes.Stride];
        // The query's scale is one positive factor common to every row: it cannot change their order.
        _ = Int8RowCodes.Quantize(query, signed, out _);
        var unsigned = new byte[_codes.Stride];
        Int8RowCodes.ToUnsigned(signed, unsigned);

        var count = Count;
        var partitions = count < 2 * MinRowsPerPartition || Environment.ProcessorCount == 1
            ? 1
            : Math.Clamp(count / MinRowsPerPartition, 1, Environment.ProcessorCount);
        var rowsPerPartition = (count + partitions - 1) / partitions;
        var collected = new TopKCollector[partitions];

        void Scan(int partition)
        {
            var collector = new TopKCollector(candidates);
            var first = partition * rowsPerPartition;
            var end = Math.Min(count, first + rowsPerPartition);
            ReadOnlySpan<byte> queryCodes = unsigned;
            for (var row = first; row < end; row++)
            {
                var dot = _codes.Dot(queryCodes, row);
                // Smaller is nearer in the collector: negate the approximate inner product.
                var score = -(dot * _codes.Scale(row));
                if (score < collector.Threshold)
                {
                    collector.Add(score, row);
                }
            }

            collected[partition] = collector;
        }

        if (partitions == 1)
        {
            Scan(0);
        }
        else
        {
            Parallel.For(0, partitions, Scan);
        }

        var rescored = new TopKCollector(k);
        Span<float> widened = Dimensions <= 4096 ? stackalloc float[Dimensions] : new float[Dimensions];
        foreach (var partition in collected)
        {
            foreach (var (_, row) in partition.Items())
            {
                TensorPrimitives.ConvertToSingle(_halves.AsSpan(row * Dimensions, Dimensions), widened);
                var score = -TensorPrimitives.Dot(query, widened);
                if (score < rescored.Threshold)
                {
                    rescored.Add(score, row);
                }
            }
        }

        return rescored.Items()
            .Select(item => (item.Score, Id: _ids[item.Row]))
            .OrderBy(item => item.Score)
            .ThenBy(item => item.Id, StringComparer.Ordinal)
            .Select(item => new VectorMatch(item.Id, -(double)item.Score))
            .ToArray();
    }
}
