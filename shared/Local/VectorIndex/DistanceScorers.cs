using System.Numerics.Tensors;

namespace ReverseImageSearch.Local.VectorIndex;

/// <summary>
/// One distance measure as a "score" where smaller is nearer, so one top-k selection serves all four.
/// Structs with static methods let the JIT specialise the scan loop per measure (no call per row).
/// </summary>
internal interface IDistanceScorer
{
    static abstract float Score(ReadOnlySpan<float> query, float queryNorm, ReadOnlySpan<float> row, float rowNorm, Span<float> scratch);

    /// <summary>The distance Vertex AI reports for a score.</summary>
    static abstract double Reported(float score);

    /// <summary>The score of a reported distance (the inverse of <see cref="Reported"/>).</summary>
    static abstract float ScoreOf(double reported);
}

/// <summary>
/// A measure whose score is a function of the float32 dot product (and the two norms), never increasing as the
/// dot grows. IEEE rounding is monotone, so that function applied to an upper bound of the dot is a lower bound of
/// the score; <see cref="ExactSearchFilter"/> relies on it.
/// </summary>
internal interface IInnerProductScorer : IDistanceScorer
{
    static abstract float ScoreOfDot(float dot, float queryNorm, float rowNorm);
}

internal readonly struct SquaredL2Scorer : IDistanceScorer
{
    public static float Score(ReadOnlySpan<float> query, float queryNorm, ReadOnlySpan<float> row, float rowNorm, Span<float> scratch)
    {
        var distance = TensorPrimitives.Distance(query, row);
        return distance * distance;
    }

    public static double Reported(float score) => score;

    public static float ScoreOf(double reported) => (float)reported;
}

internal readonly struct L1Scorer : IDistanceScorer
{
    public static float Score(ReadOnlySpan<float> query, float queryNorm, ReadOnlySpan<float> row, float rowNorm, Span<float> scratch)
    {
        TensorPrimitives.Subtract(query, row, scratch);
        return TensorPrimitives.SumOfMagnitudes(scratch);
    }

    public static double Reported(float score) => score;

    public static float ScoreOf(double reported) => (float)reported;
}

/// <summary>1 - cosine similarity; a zero vector has no direction and counts as similarity 0.</summary>
internal readonly struct CosineScorer : IInnerProductScorer
{
    public static float Score(ReadOnlySpan<float> query, float queryNorm, ReadOnlySpan<float> row, float rowNorm, Span<float> scratch) =>
        ScoreOfDot(TensorPrimitives.Dot(query, row), queryNorm, rowNorm);

    public static float ScoreOfDot(float dot, float queryNorm, float rowNorm)
    {
        var norms = queryNorm * rowNorm;
        return norms == 0 ? 1f : 1f - (dot / norms);
    }

    public static double Reported(float score) => score;

    public static float ScoreOf(double reported) => (float)reported;
}

/// <summary>Vertex AI's DOT_PRODUCT_DISTANCE reports the dot product itself and ranks the largest first,
/// so the score is its negation and the reported distance negates it back.</summary>
internal readonly struct DotProductScorer : IInnerProductScorer
{
    public static float Score(ReadOnlySpan<float> query, float queryNorm, ReadOnlySpan<float> row, float rowNorm, Span<float> scratch) =>
        ScoreOfDot(TensorPrimitives.Dot(query, row), queryNorm, rowNorm);

    public static float ScoreOfDot(float dot, float queryNorm, float rowNorm) => -dot;

    public static double Reported(float score) => -score;

    public static float ScoreOf(double reported) => (float)-reported;
}
