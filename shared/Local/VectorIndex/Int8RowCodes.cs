using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ReverseImageSearch.Local.VectorIndex;

/// <summary>
/// Rows of symmetric int8 codes with one scale per row (value ~ scale * code), kept dense by swap-remove as the
/// float index keeps its slab. A query is multiplied as unsigned bytes (its code + 128, the form AVX-VNNI takes),
/// and the row's code sum takes the 128 back out, so <see cref="Dot"/> is the exact integer sum of code products.
/// Rows are padded with zero codes to whole 32-byte vectors so the integer loops need no tail.
/// Writes are not thread-safe; reads are.
/// </summary>
internal sealed class Int8RowCodes
{
    /// <summary>
    /// Above this the unsigned-by-signed byte products (at most 255 * 127 each) could overflow the int32 sums, and
    /// the integer dot products would no longer be exact.
    /// </summary>
    public const int MaxExactDimensions = 65_536;

    private sbyte[] _codes;
    private float[] _scales;
    private int[] _codeSums;

    public Int8RowCodes(int dimensions, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dimensions);
        Dimensions = dimensions;
        Stride = StrideOf(dimensions);
        capacity = Math.Max(capacity, 16);
        _codes = new sbyte[(long)capacity * Stride > int.MaxValue ? throw new ArgumentOutOfRangeException(nameof(capacity)) : capacity * Stride];
        _scales = new float[capacity];
        _codeSums = new int[capacity];
    }

    public int Dimensions { get; }

    /// <summary>Bytes a row's codes take: the dimensions rounded up to a whole number of 32-byte vectors.</summary>
    public int Stride { get; }

    public int Count { get; private set; }

    /// <summary>Rows held before the arrays grow.</summary>
    public int Capacity => _scales.Length;

    /// <summary>Bytes of codes, scales and code sums.</summary>
    public long Bytes => _codes.LongLength + ((long)_scales.Length * sizeof(float)) + ((long)_codeSums.Length * sizeof(int));

    public static int StrideOf(int dimensions) => (dimensions + 31) / 32 * 32;

    public float Scale(int row) => _scales[row];

    public ReadOnlySpan<sbyte> Codes(int row) => _codes.AsSpan(row * Stride, Stride);

    /// <summary>Replaces row <paramref name="row"/>, or appends when it is <see cref="Count"/>; returns its scale.</summary>
    public float Set(int row, ReadOnlySpan<float> vector)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(row, Count);

        if (row == Count)
        {
            if (Count == Capacity)
            {
                var capacity = Capacity * 2;
                Array.Resize(ref _codes, capacity * Stride);
                Array.Resize(ref _scales, capacity);
                Array.Resize(ref _codeSums, capacity);
            }

            Count++;
        }

        return Write(row, vector);
    }

    /// <summary>
    /// Forgets every row and makes room for <paramref name="count"/>, each to be written once with <see cref="Write"/>
    /// (from several threads at once if need be): arrays sized once, nothing copied.
    /// </summary>
    public void Reset(int count)
    {
        if (count > Capacity)
        {
            _codes = new sbyte[(long)count * Stride > int.MaxValue ? throw new ArgumentOutOfRangeException(nameof(count)) : count * Stride];
            _scales = new float[count];
            _codeSums = new int[count];
        }

        Count = count;
    }

    /// <summary>Quantises <paramref name="vector"/> into an existing row; returns its scale. Distinct rows may be written concurrently.</summary>
    public float Write(int row, ReadOnlySpan<float> vector)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Count);
        if (vector.Length != Dimensions)
        {
            throw new ArgumentException($"The vector has {vector.Length} dimensions; the codes have {Dimensions}.", nameof(vector));
        }

        _scales[row] = Quantize(vector, _codes.AsSpan(row * Stride, Stride), out _codeSums[row]);
        return _scales[row];
    }

    /// <summary>Swap-remove: the last row moves into <paramref name="row"/> and the count drops.</summary>
    public void MoveLastInto(int row)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Count);
        var last = Count - 1;
        if (row != last)
        {
            _codes.AsSpan(last * Stride, Stride).CopyTo(_codes.AsSpan(row * Stride, Stride));
            _scales[row] = _scales[last];
            _codeSums[row] = _codeSums[last];
        }

        Count--;
    }

    /// <summary>Sum over dimensions of query code times row code, exact (see <see cref="MaxExactDimensions"/>).</summary>
    /// <param name="unsignedQuery">The query's codes plus 128, from <see cref="ToUnsigned"/>.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Dot(ReadOnlySpan<byte> unsignedQuery, int row) =>
        UnsignedDot(unsignedQuery, MemoryMarshal.AsBytes(Codes(row))) - (128 * _codeSums[row]);

    /// <summary><see cref="Dot"/> for two queries at once, reading the row's codes once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public (int First, int Second) DotPair(ReadOnlySpan<byte> firstUnsignedQuery, ReadOnlySpan<byte> secondUnsignedQuery, int row)
    {
        var (first, second) = UnsignedDotPair(firstUnsignedQuery, secondUnsignedQuery, MemoryMarshal.AsBytes(Codes(row)));
        var correction = 128 * _codeSums[row];
        return (first - correction, second - correction);
    }

    /// <summary>Symmetric int8 codes of <paramref name="vector"/> (the rest of <paramref name="codes"/> zeroed); returns the scale.</summary>
    /// <remarks>Runs for every stored vector when an index is loaded: optimised from the first call, not after tiering.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Quantize(ReadOnlySpan<float> vector, Span<sbyte> codes, out int codeSum)
    {
        codes.Clear();
        var largest = LargestMagnitude(vector);
        codeSum = 0;
        if (!(largest > 0))
        {
            return 0;
        }

        var toCode = 127f / largest;
        var i = 0;
        if (Vector256.IsHardwareAccelerated && float.IsFinite(toCode) && toCode > 0 && codes.Length >= vector.Length)
        {
            // The scalar loop's very codes, 32 at a time: the same float products, rounded to nearest with ties to
            // even as MathF.Round does, and clamped. Every product is finite here, so the native min, max and
            // conversion (which differ from the scalar ones only on NaN) agree with them.
            ref var values = ref MemoryMarshal.GetReference(vector);
            ref var target = ref MemoryMarshal.GetReference(codes);
            var sums = Vector256<int>.Zero;
            for (; i + 32 <= vector.Length; i += 32)
            {
                var a = CodesOf(Vector256.LoadUnsafe(ref values, (nuint)i) * toCode);
                var b = CodesOf(Vector256.LoadUnsafe(ref values, (nuint)(i + 8)) * toCode);
                var c = CodesOf(Vector256.LoadUnsafe(ref values, (nuint)(i + 16)) * toCode);
                var d = CodesOf(Vector256.LoadUnsafe(ref values, (nuint)(i + 24)) * toCode);
                sums += a + b + c + d;
                Vector256.Narrow(Vector256.Narrow(a, b), Vector256.Narrow(c, d)).StoreUnsafe(ref target, (nuint)i);
            }

            codeSum = Vector256.Sum(sums);
        }

        for (; i < vector.Length; i++)
        {
            var code = (sbyte)Math.Clamp(MathF.Round(vector[i] * toCode), -127f, 127f);
            codes[i] = code;
            codeSum += code;
        }

        return 1 / toCode;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> CodesOf(Vector256<float> scaled) =>
        Vector256.ConvertToInt32Native(Vector256.MinNative(Vector256.MaxNative(Vector256.Round(scaled), Vector256.Create(-127f)), Vector256.Create(127f)));

    /// <summary>The largest |x|, NaN if any element is (as <see cref="TensorPrimitives.MaxMagnitude{T}(ReadOnlySpan{T})"/>, only faster).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float LargestMagnitude(ReadOnlySpan<float> vector)
    {
        if (!Vector256.IsHardwareAccelerated || vector.Length < 8)
        {
            // MaxMagnitude returns the element itself, sign included.
            return MathF.Abs(TensorPrimitives.MaxMagnitude(vector));
        }

        ref var values = ref MemoryMarshal.GetReference(vector);
        var largest = Vector256<float>.Zero;
        var notANumber = Vector256<float>.Zero;
        var i = 0;
        for (; i + 8 <= vector.Length; i += 8)
        {
            var x = Vector256.LoadUnsafe(ref values, (nuint)i);
            largest = Vector256.MaxNative(largest, Vector256.Abs(x));
            notANumber |= ~Vector256.Equals(x, x);
        }

        if (notANumber != Vector256<float>.Zero)
        {
            return float.NaN;
        }

        var result = 0f;
        for (var lane = 0; lane < Vector256<float>.Count; lane++)
        {
            result = Math.Max(result, largest[lane]);
        }

        for (; i < vector.Length; i++)
        {
            // Math.Max returns NaN if either is.
            result = Math.Max(result, MathF.Abs(vector[i]));
        }

        return result;
    }

    /// <summary>Codes shifted to unsigned bytes (code + 128), the query form <see cref="Dot"/> takes.</summary>
    public static void ToUnsigned(ReadOnlySpan<sbyte> codes, Span<byte> unsignedCodes)
    {
        for (var i = 0; i < codes.Length; i++)
        {
            unsignedCodes[i] = (byte)(codes[i] + 128);
        }
    }

    /// <summary>Sum of unsigned query bytes times signed row codes (read as bytes); lengths are whole 32-byte vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int UnsignedDot(ReadOnlySpan<byte> query, ReadOnlySpan<byte> row)
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
                sum += WidenedProducts(Vector256.LoadUnsafe(ref q, (nuint)i), Vector256.LoadUnsafe(ref r, (nuint)i).AsSByte());
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (int First, int Second) UnsignedDotPair(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second, ReadOnlySpan<byte> row)
    {
        ref var a = ref MemoryMarshal.GetReference(first);
        ref var b = ref MemoryMarshal.GetReference(second);
        ref var r = ref MemoryMarshal.GetReference(row);
        if (AvxVnni.IsSupported)
        {
            // Four independent sums: one chain per query would wait on the instruction's latency every step.
            var sumA0 = Vector256<int>.Zero;
            var sumA1 = Vector256<int>.Zero;
            var sumB0 = Vector256<int>.Zero;
            var sumB1 = Vector256<int>.Zero;
            var i = 0;
            for (; i + 64 <= row.Length; i += 64)
            {
                var codes0 = Vector256.LoadUnsafe(ref r, (nuint)i).AsSByte();
                var codes1 = Vector256.LoadUnsafe(ref r, (nuint)(i + 32)).AsSByte();
                sumA0 = AvxVnni.MultiplyWideningAndAdd(sumA0, Vector256.LoadUnsafe(ref a, (nuint)i), codes0);
                sumB0 = AvxVnni.MultiplyWideningAndAdd(sumB0, Vector256.LoadUnsafe(ref b, (nuint)i), codes0);
                sumA1 = AvxVnni.MultiplyWideningAndAdd(sumA1, Vector256.LoadUnsafe(ref a, (nuint)(i + 32)), codes1);
                sumB1 = AvxVnni.MultiplyWideningAndAdd(sumB1, Vector256.LoadUnsafe(ref b, (nuint)(i + 32)), codes1);
            }

            if (i < row.Length)
            {
                var codes = Vector256.LoadUnsafe(ref r, (nuint)i).AsSByte();
                sumA0 = AvxVnni.MultiplyWideningAndAdd(sumA0, Vector256.LoadUnsafe(ref a, (nuint)i), codes);
                sumB0 = AvxVnni.MultiplyWideningAndAdd(sumB0, Vector256.LoadUnsafe(ref b, (nuint)i), codes);
            }

            return (Vector256.Sum(sumA0 + sumA1), Vector256.Sum(sumB0 + sumB1));
        }

        if (Vector256.IsHardwareAccelerated)
        {
            var sumA = Vector256<int>.Zero;
            var sumB = Vector256<int>.Zero;
            for (var i = 0; i < row.Length; i += 32)
            {
                var codes = Vector256.LoadUnsafe(ref r, (nuint)i).AsSByte();
                sumA += WidenedProducts(Vector256.LoadUnsafe(ref a, (nuint)i), codes);
                sumB += WidenedProducts(Vector256.LoadUnsafe(ref b, (nuint)i), codes);
            }

            return (Vector256.Sum(sumA), Vector256.Sum(sumB));
        }

        int totalA = 0, totalB = 0;
        for (var i = 0; i < row.Length; i++)
        {
            totalA += first[i] * (sbyte)row[i];
            totalB += second[i] * (sbyte)row[i];
        }

        return (totalA, totalB);
    }

    /// <summary>The 32 products of unsigned query bytes and signed codes, summed into 8 ints.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> WidenedProducts(Vector256<byte> query, Vector256<sbyte> codes)
    {
        var (qLow, qHigh) = Vector256.Widen(query);
        var (rLow, rHigh) = Vector256.Widen(codes);
        // Products of a byte (0..255) and an sbyte (-127..127) fit in short; widen them before adding.
        var (a, b) = Vector256.Widen(qLow.AsInt16() * rLow);
        var (c, d) = Vector256.Widen(qHigh.AsInt16() * rHigh);
        return a + b + c + d;
    }
}
