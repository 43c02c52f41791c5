using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ReverseImageSearch.Local.VectorIndex;

/// <summary>
/// Lets an exact inner-product search score only a few rows in float32 and still return exactly what scoring
/// every row would. It keeps an int8 copy of the rows (<see cref="Int8RowCodes"/>) and two numbers per row from
/// quantising it; one scan of the codes then gives each row a float value its float32 dot product with the query
/// provably cannot exceed. A row whose score at that value is already worse than the k-th best float32 score found
/// so far cannot be among the k nearest, and is never read in float32.
/// <para>
/// The bound. The row is x = xq + ex, xq = s * c its dequantised codes; the query q = qq + eq with qq = s1 * c1 +
/// s2 * c2 (two int8 levels, the second coding the first's rounding error, so eq is about 250 times smaller than one
/// level leaves). Exactly, q.x = qq.xq + q.ex + eq.xq, where qq.xq = s * (s1 * (c1.c) + s2 * (c2.c)) comes from two
/// exact integer dot products and Cauchy-Schwarz bounds the rest by |q| |ex| + |eq| |xq|. The float32 dot the scan
/// computes is within gamma(D) * |q| |x| of q.x (gamma(D) = D u / (1 - D u), u = 2^-24: any summation order, fused
/// or not), plus D * 2^-150 for underflow. Norms are summed in double and rounded up. The slack is generous, so
/// that it also covers the bound's own double arithmetic and its final rounding to the nearest float (at most
/// 2^-24 of |estimate| + bound, or 2^-150 below the normal range): the rounding term is (2 gamma(D) + 2^-20) times
/// |q| |x| + (|s1 c1| + |s2 c2|) |xq|, the bound is inflated by 2^-20, and the underflow allowance is doubled.
/// Queries or rows longer than 2^50 are out of range (their float32 dot could overflow): such a query is not
/// filtered, such a row is always scored.
/// </para>
/// Memory: the codes take 1 byte a dimension (rounded up to 32) plus 16 bytes a row, on top of the float32 rows.
/// Writes are not thread-safe; scans are.
/// </summary>
internal sealed class ExactSearchFilter
{
    /// <summary>
    /// Relative inflation of every computed norm and bound: far above their double rounding errors, and above the
    /// float rounding (2^-24) of the bound's share of the final sum.
    /// </summary>
    private const double Inflation = 1 + (1.0 / (1 << 20));

    /// <summary>Above this length a query or row leaves the range where the float32 dot cannot overflow.</summary>
    private static readonly double MaxNorm = Math.ScaleB(1.0, 50);

    private readonly Int8RowCodes _codes;

    /// <summary>
    /// 2 gamma(D), the float32 dot's worst relative rounding error doubled, plus 2^-20 for the estimate's double
    /// arithmetic and its share of the final rounding to float.
    /// </summary>
    private readonly double _roundingSlack;

    private readonly double _underflowAllowance;
    private float[] _rowErrorTerms;
    private float[] _dequantizedNorms;

    public ExactSearchFilter(int dimensions, int capacity = 16)
    {
        if (!Supports(dimensions))
        {
            throw new ArgumentOutOfRangeException(nameof(dimensions), "The exact filter needs Vector256 and at most 65536 dimensions.");
        }

        _codes = new Int8RowCodes(dimensions, capacity);
        var unitRoundoff = Math.ScaleB(1.0, -24);
        _roundingSlack = (2 * dimensions * unitRoundoff / (1 - (dimensions * unitRoundoff))) + Math.ScaleB(1.0, -20);
        _underflowAllowance = Math.ScaleB(dimensions + 2.0, -148);
        _rowErrorTerms = new float[_codes.Capacity];
        _dequantizedNorms = new float[_codes.Capacity];
    }

    public int Count => _codes.Count;

    /// <summary>Bytes held for the codes and the per-row bound terms.</summary>
    public long Bytes => _codes.Bytes + ((long)_rowErrorTerms.Length * sizeof(float)) + ((long)_dequantizedNorms.Length * sizeof(float));

    /// <summary>
    /// Integer dot products stay exact up to <see cref="Int8RowCodes.MaxExactDimensions"/>; without 256-bit vectors
    /// the integer scan is no faster than the float32 one it would replace.
    /// </summary>
    public static bool Supports(int dimensions) => dimensions <= Int8RowCodes.MaxExactDimensions && Vector256.IsHardwareAccelerated;

    /// <summary>Replaces row <paramref name="row"/>, or appends when it is <see cref="Count"/>.</summary>
    public void SetRow(int row, ReadOnlySpan<float> vector)
    {
        var scale = _codes.Set(row, vector);
        if (_rowErrorTerms.Length < _codes.Capacity)
        {
            Array.Resize(ref _rowErrorTerms, _codes.Capacity);
            Array.Resize(ref _dequantizedNorms, _codes.Capacity);
        }

        WriteBoundTerms(row, vector, scale);
    }

    /// <summary>
    /// Replaces every row with the first <paramref name="count"/> rows of <paramref name="slab"/>, on all cores:
    /// loading an index this way, once at the end, takes a fraction of the time row by row would.
    /// </summary>
    public void Rebuild(float[] slab, int count)
    {
        _codes.Reset(count);
        if (_rowErrorTerms.Length < _codes.Capacity)
        {
            _rowErrorTerms = new float[_codes.Capacity];
            _dequantizedNorms = new float[_codes.Capacity];
        }

        if (count == 0)
        {
            return;
        }

        var dimensions = _codes.Dimensions;
        Parallel.ForEach(System.Collections.Concurrent.Partitioner.Create(0, count, 1024), range =>
        {
            for (var row = range.Item1; row < range.Item2; row++)
            {
                var vector = slab.AsSpan(row * dimensions, dimensions);
                WriteBoundTerms(row, vector, _codes.Write(row, vector));
            }
        });
    }

    private void WriteBoundTerms(int row, ReadOnlySpan<float> vector, float quantizedScale)
    {
        var scale = (double)quantizedScale;
        // From the codes as stored: the bound holds however the quantiser rounded or clamped.
        var (errorSquares, dequantizedSquares, squares) = SumsOfSquares(vector, _codes.Codes(row), scale);
        var norm = UpperNorm(squares);
        _rowErrorTerms[row] = norm > MaxNorm ? float.PositiveInfinity : RoundUp((UpperNorm(errorSquares) + (_roundingSlack * norm)) * Inflation);
        _dequantizedNorms[row] = RoundUp(UpperNorm(dequantizedSquares));
    }

    /// <summary>Swap-remove, as the float index does: the last row moves into <paramref name="row"/>.</summary>
    public void MoveLastInto(int row)
    {
        var last = _codes.Count - 1;
        _codes.MoveLastInto(row);
        _rowErrorTerms[row] = _rowErrorTerms[last];
        _dequantizedNorms[row] = _dequantizedNorms[last];
    }

    /// <summary>The query in two int8 levels with its bound terms, or null when it is too long to filter.</summary>
    public Query? Prepare(ReadOnlySpan<float> query)
    {
        var stride = _codes.Stride;
        var high = new sbyte[stride];
        var highScale = (double)Int8RowCodes.Quantize(query, high, out _);
        var residual = new float[query.Length];
        for (var i = 0; i < query.Length; i++)
        {
            residual[i] = (float)(query[i] - (highScale * high[i]));
        }

        var low = new sbyte[stride];
        var lowScale = (double)Int8RowCodes.Quantize(residual, low, out _);

        double squares = 0, errorSquares = 0, highSquares = 0, lowSquares = 0;
        for (var i = 0; i < query.Length; i++)
        {
            var highPart = highScale * high[i];
            var lowPart = lowScale * low[i];
            var error = query[i] - highPart - lowPart;
            squares += (double)query[i] * query[i];
            errorSquares += error * error;
            highSquares += highPart * highPart;
            lowSquares += lowPart * lowPart;
        }

        var norm = UpperNorm(squares);
        if (!(norm <= MaxNorm))
        {
            return null;
        }

        var highUnsigned = new byte[stride];
        var lowUnsigned = new byte[stride];
        Int8RowCodes.ToUnsigned(high, highUnsigned);
        Int8RowCodes.ToUnsigned(low, lowUnsigned);
        // The slack on the quantised parts covers the double rounding of the estimate built from them.
        var errorTerm = (UpperNorm(errorSquares) + (_roundingSlack * (UpperNorm(highSquares) + UpperNorm(lowSquares)))) * Inflation;
        return new Query(highUnsigned, lowUnsigned, highScale, lowScale, norm, errorTerm);
    }

    /// <summary>
    /// For rows [<paramref name="first"/>, <paramref name="end"/>) and each query: writes the lowest score the row
    /// can have into <paramref name="lowerBounds"/>[query][row], and offers the row's estimated score to
    /// <paramref name="nearestByEstimate"/>[query]. Rows outer, queries inner: each row's codes are read once.
    /// </summary>
    public void Scan<TScorer>(
        Query[] queries, ReadOnlySpan<float> queryNorms, ReadOnlySpan<float> rowNorms, int first, int end,
        float[][] lowerBounds, TopKCollector[] nearestByEstimate)
        where TScorer : struct, IInnerProductScorer
    {
        for (var row = first; row < end; row++)
        {
            var scale = (double)_codes.Scale(row);
            var rowErrorTerm = (double)_rowErrorTerms[row];
            var dequantizedNorm = (double)_dequantizedNorms[row];
            var rowNorm = rowNorms[row];
            for (var q = 0; q < queries.Length; q++)
            {
                var query = queries[q];
                var (high, low) = _codes.DotPair(query.High, query.Low, row);
                var estimate = scale * ((query.HighScale * high) + (query.LowScale * low));
                var bound = ((query.Norm * rowErrorTerm) + (query.ErrorTerm * dequantizedNorm) + _underflowAllowance) * Inflation;
                // Rounded to nearest, not up: the slack already covers it, and a data-dependent branch per row
                // would cost more than the scan's arithmetic.
                lowerBounds[q][row] = TScorer.ScoreOfDot((float)(estimate + bound), queryNorms[q], rowNorm);
                var estimatedScore = TScorer.ScoreOfDot((float)estimate, queryNorms[q], rowNorm);
                if (estimatedScore < nearestByEstimate[q].Threshold)
                {
                    nearestByEstimate[q].Add(estimatedScore, row);
                }
            }
        }
    }

    /// <summary>
    /// In double, where scale times code is exact: the squares of the quantisation error x - s c, of the
    /// dequantised s c, and of x. Runs for every stored vector when an index is loaded: optimised from the first call.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static (double Error, double Dequantized, double Vector) SumsOfSquares(ReadOnlySpan<float> vector, ReadOnlySpan<sbyte> codes, double scale)
    {
        var i = 0;
        var sums = default(Squares);
        var scales = Vector256.Create(scale);
        ref var values = ref MemoryMarshal.GetReference(vector);
        ref var codeBytes = ref MemoryMarshal.GetReference(codes);
        // Supports() has made sure of 256-bit vectors; rows of codes are padded to whole 32-byte vectors.
        for (; i + 32 <= vector.Length; i += 32)
        {
            var (low, high) = Vector256.Widen(Vector256.LoadUnsafe(ref codeBytes, (nuint)i));
            var (c0, c1) = Vector256.Widen(low);
            var (c2, c3) = Vector256.Widen(high);
            sums.Add(Vector256.LoadUnsafe(ref values, (nuint)i), c0, scales);
            sums.Add(Vector256.LoadUnsafe(ref values, (nuint)(i + 8)), c1, scales);
            sums.Add(Vector256.LoadUnsafe(ref values, (nuint)(i + 16)), c2, scales);
            sums.Add(Vector256.LoadUnsafe(ref values, (nuint)(i + 24)), c3, scales);
        }

        var (error, dequantized, squares) = (Vector256.Sum(sums.Error), Vector256.Sum(sums.Dequantized), Vector256.Sum(sums.Vector));
        for (; i < vector.Length; i++)
        {
            var part = scale * codes[i];
            var difference = vector[i] - part;
            error += difference * difference;
            dequantized += part * part;
            squares += (double)vector[i] * vector[i];
        }

        return (error, dequantized, squares);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double UpperNorm(double squares) => Math.Sqrt(squares) * Inflation;

    /// <summary>The smallest float not below <paramref name="value"/> (NaN stays NaN, which callers treat as no bound).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RoundUp(double value)
    {
        var rounded = (float)value;
        return rounded < value ? MathF.BitIncrement(rounded) : rounded;
    }

    /// <summary>Running sums of squares, four doubles wide, for <see cref="SumsOfSquares"/>.</summary>
    private struct Squares
    {
        public Vector256<double> Error;
        public Vector256<double> Dequantized;
        public Vector256<double> Vector;

        /// <summary>Eight values and their codes; converting the codes to float and widening both to double is exact.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(Vector256<float> values, Vector256<int> codes, Vector256<double> scales)
        {
            var (valuesLow, valuesHigh) = Vector256.Widen(values);
            var (codesLow, codesHigh) = Vector256.Widen(Vector256.ConvertToSingle(codes));
            Add(valuesLow, codesLow * scales);
            Add(valuesHigh, codesHigh * scales);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Add(Vector256<double> values, Vector256<double> dequantized)
        {
            var difference = values - dequantized;
            Error += difference * difference;
            Dequantized += dequantized * dequantized;
            Vector += values * values;
        }
    }

    /// <param name="High">First-level codes plus 128.</param>
    /// <param name="Low">Second-level codes (of the first level's rounding error) plus 128.</param>
    /// <param name="Norm">|q|, rounded up.</param>
    /// <param name="ErrorTerm">|eq| plus rounding slack, multiplied by |xq| in the bound.</param>
    internal sealed record Query(byte[] High, byte[] Low, double HighScale, double LowScale, double Norm, double ErrorTerm);
}
