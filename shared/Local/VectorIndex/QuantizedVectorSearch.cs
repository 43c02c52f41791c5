using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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

    private readonly int _stride;
    private sbyte[] _codes;
    private Half[] _halves;
    private float[] _scales;
    private int[] _codeSums;
    private string[] _ids;
    private int _count;

    public QuantizedVectorSearch(int dimensions, int capacity = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dimensions);
        Dimensions = dimensions;
        // Rows are padded with zero codes to whole 32-byte vectors so the scan needs no tail loop.
        _stride = (dimensions + 31) / 32 * 32;
        capacity = Math.Max(capacity, 16);
        _codes = new sbyte[(long)capacity * _stride > int.MaxValue ? throw new ArgumentOutOfRangeException(nameof(capacity)) : capacity * _stride];
        _halves = new Half[capacity * dimensions];
        _scales = new float[capacity];
        _codeSums = new int[capacity];
        _ids = new string[capacity];
    }

    public int Dimensions { get; }

    public int Count => _count;

    /// <summary>Bytes held for the vectors (codes, halves, scales, sums), ids excluded.</summary>
    public long VectorBytes => ((long)_codes.Length * sizeof(sbyte)) + ((long)_halves.Length * 2) + ((long)_scales.Length * 8);

    /// <summary>Whether the integer scan uses AVX-VNNI on this CPU.</summary>
    public static bool UsesVnni => AvxVnni.IsSupported;

    public void Add(string id, ReadOnlySpan<float> vector) => SetRow(_count, id, vector);

    /// <summary>Replaces row <paramref name="row"/>, or appends when it is <see cref="Count"/>.</summary>
    internal void SetRow(int row, string id, ReadOnlySpan<float> vector)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(row, _count);
        if (vector.Length != Dimensions)
        {
            throw new ArgumentException($"The vector has {vector.Length} dimensions; the search has {Dimensions}.", nameof(vector));
        }

        if (row < _count)
        {
            Write(row, id, vector);
            return;
        }

        if (_count == _ids.Length)
        {
            var capacity = _ids.Length * 2;
            Array.Resize(ref _codes, capacity * _stride);
            Array.Resize(ref _halves, capacity * Dimensions);
            Array.Resize(ref _scales, capacity);
            Array.Resize(ref _codeSums, capacity);
            Array.Resize(ref _ids, capacity);
        }

        _count++;
        Write(row, id, vector);
    }

    /// <summary>Swap-remove: the last row moves into <paramref name="row"/> (as the float index does) and the count drops.</summary>
    internal void MoveLastInto(int row)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, _count);
        var last = _count - 1;
        if (row != last)
        {
            _codes.AsSpan(last * _stride, _stride).CopyTo(_codes.AsSpan(row * _stride, _stride));
            _halves.AsSpan(last * Dimensions, Dimensions).CopyTo(_halves.AsSpan(row * Dimensions, Dimensions));
            _scales[row] = _scales[last];
            _codeSums[row] = _codeSums[last];
            _ids[row] = _ids[last];
        }

        _ids[last] = null!;
        _count--;
    }

    private void Write(int row, string id, ReadOnlySpan<float> vector)
    {
        _ids[row] = id;
        _scales[row] = Quantize(vector, _codes.AsSpan(row * _stride, _stride), out _codeSums[row]);
        TensorPrimitives.ConvertToHalf(vector, _halves.AsSpan(row * Dimensions, Dimensions));
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
        k = Math.Min(k, _count);
        if (k == 0)
        {
            return [];
        }

        candidates = Math.Min(_count, Math.Max(k, candidates > 0 ? candidates : Math.Max(64, 8 * k)));

        // The query as unsigned bytes (int8 code + 128); the row's code sum takes the 128 back out.
        var signed = new sbyte[_stride];
        // The query's scale is one positive factor common to every row: it cannot change their order.
        _ = Quantize(query, signed, out _);
        var unsigned = new byte[_stride];
        for (var i = 0; i < _stride; i++)
        {
            unsigned[i] = (byte)(signed[i] + 128);
        }

        var partitions = _count < 2 * MinRowsPerPartition || Environment.ProcessorCount == 1
            ? 1
            : Math.Clamp(_count / MinRowsPerPartition, 1, Environment.ProcessorCount);
        var rowsPerPartition = (_count + partitions - 1) / partitions;
        var collected = new TopKCollector[partitions];

        void Scan(int partition)
        {
            var collector = new TopKCollector(candidates);
            var first = partition * rowsPerPartition;
            var end = Math.Min(_count, first + rowsPerPartition);
            ReadOnlySpan<byte> queryCodes = unsigned;
            for (var row = first; row < end; row++)
            {
                var dot = IntegerDot(queryCodes, MemoryMarshal.Cast<sbyte, byte>(_codes.AsSpan(row * _stride, _stride))) - (128 * _codeSums[row]);
                // Smaller is nearer in the collector: negate the approximate inner product.
                var score = -(dot * _scales[row]);
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

    /// <summary>Symmetric int8 codes of <paramref name="vector"/> (zero-padded to the stride); returns the scale.</summary>
    private static float Quantize(ReadOnlySpan<float> vector, Span<sbyte> codes, out int codeSum)
    {
        codes.Clear();
        // MaxMagnitude returns the element itself, sign included.
        var largest = MathF.Abs(TensorPrimitives.MaxMagnitude(vector));
        codeSum = 0;
        if (!(largest > 0))
        {
            return 0;
        }

        var toCode = 127f / largest;
        for (var i = 0; i < vector.Length; i++)
        {
            var code = (sbyte)Math.Clamp(MathF.Round(vector[i] * toCode), -127f, 127f);
            codes[i] = code;
            codeSum += code;
        }

        return 1 / toCode;
    }

    /// <summary>Sum of unsigned query bytes times signed row codes (read as bytes); lengths are whole 32-byte vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int IntegerDot(ReadOnlySpan<byte> query, ReadOnlySpan<byte> row)
    {
        ref var q = ref MemoryMarshal.GetReference(query);
        ref var r = ref MemoryMarshal.GetReference(row);
        if (AvxVnni.IsSupported)
        {
            var sum0 = Vector256<int>.Zero;
            var sum1 = Vector256<int>.Zero;
            var i = 0;
            for (; i + 64 <= query.Length; i += 64)
            {
                sum0 = AvxVnni.MultiplyWideningAndAdd(sum0, Vector256.LoadUnsafe(ref q, (nuint)i), Vector256.LoadUnsafe(ref r, (nuint)i).AsSByte());
                sum1 = AvxVnni.MultiplyWideningAndAdd(sum1, Vector256.LoadUnsafe(ref q, (nuint)(i + 32)), Vector256.LoadUnsafe(ref r, (nuint)(i + 32)).AsSByte());
            }

            if (i < query.Length)
            {
                sum0 = AvxVnni.MultiplyWideningAndAdd(sum0, Vector256.LoadUnsafe(ref q, (nuint)i), Vector256.LoadUnsafe(ref r, (nuint)i).AsSByte());
            }

            return Vector256.Sum(sum0 + sum1);
        }

        if (Vector256.IsHardwareAccelerated)
        {
            var sum = Vector256<int>.Zero;
            for (var i = 0; i < query.Length; i += 32)
            {
                var (qLow, qHigh) = Vector256.Widen(Vector256.LoadUnsafe(ref q, (nuint)i));
                var (rLow, rHigh) = Vector256.Widen(Vector256.LoadUnsafe(ref r, (nuint)i).AsSByte());
                var low = qLow.AsInt16() * rLow;
                var high = qHigh.AsInt16() * rHigh;
                // Products of a byte (0..255) and an sbyte (-127..127) fit in short; widen them before adding.
                var (a, b) = Vector256.Widen(low);
                var (c, d) = Vector256.Widen(high);
                sum += a + b + c + d;
            }

            return Vector256.Sum(sum);
        }

        var total = 0;
        for (var i = 0; i < query.Length; i++)
        {
            total += query[i] * (sbyte)row[i];
        }

        return total;
    }
}
