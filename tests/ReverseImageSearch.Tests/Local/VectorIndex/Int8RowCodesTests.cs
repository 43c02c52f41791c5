using ReverseImageSearch.Local.VectorIndex;

namespace ReverseImageSearch.Tests.Local.VectorIndex;

public class Int8RowCodesTests
{
    private static IEnumerable<TestCaseData> Vectors()
    {
        var random = new Random(3);
        foreach (var length in new[] { 1, 31, 32, 100, 1280, 1283 })
        {
            yield return new TestCaseData(Enumerable.Range(0, length).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray()).SetName($"uniform, {length}");
        }

        // Largest 127, so the products are the values themselves: every .5 is a tie, rounded to even.
        yield return new TestCaseData(Enumerable.Range(0, 300).Select(i => i == 0 ? 127f : ((i % 254) - 127) + 0.5f).ToArray()).SetName("ties");
        yield return new TestCaseData(Enumerable.Range(0, 64).Select(i => i % 3 == 0 ? -0f : i * 1e-3f).ToArray()).SetName("signed zeros");
        // A subnormal largest value: 127 / largest overflows, and the codes come from the scalar loop.
        yield return new TestCaseData(Enumerable.Range(0, 40).Select(i => i * 1e-40f).ToArray()).SetName("subnormal");
    }

    [TestCaseSource(nameof(Vectors))]
    public void QuantizeGivesTheScalarFormulasCodes(float[] vector)
    {
        var codes = new sbyte[Int8RowCodes.StrideOf(vector.Length)];
        Array.Fill(codes, (sbyte)99); // padding must come back zero

        var scale = Int8RowCodes.Quantize(vector, codes, out var codeSum);

        var toCode = 127f / vector.Max(MathF.Abs);
        var expected = vector.Select(v => (sbyte)Math.Clamp(MathF.Round(v * toCode), -127f, 127f)).ToArray();
        Assert.That(codes.Take(vector.Length), Is.EqualTo(expected));
        Assert.That(codes.Skip(vector.Length), Has.All.EqualTo(0));
        Assert.That(codeSum, Is.EqualTo(expected.Sum(c => c)));
        Assert.That(scale, Is.EqualTo(1 / toCode));
    }

    [TestCase(3)]
    [TestCase(40)]
    [TestCase(1283)]
    public void AVectorWithNaNGetsScaleZeroAndInfinityIsClampedAsTheScalarFormulaClampsIt(int nanAt)
    {
        var vector = Enumerable.Range(0, 1290).Select(i => (float)Math.Sin(i)).ToArray();
        vector[nanAt] = float.NaN;
        var codes = new sbyte[Int8RowCodes.StrideOf(vector.Length)];
        Assert.That(Int8RowCodes.Quantize(vector, codes, out var codeSum), Is.Zero);
        Assert.That(codes, Has.All.EqualTo(0));
        Assert.That(codeSum, Is.Zero);

        vector[nanAt] = float.NegativeInfinity;
        Int8RowCodes.Quantize(vector, codes, out codeSum);
        // 127 / infinity is 0: infinity times 0 is NaN, which converts to code 0, and so does every finite value.
        Assert.That(codes, Has.All.EqualTo(0));
        Assert.That(codeSum, Is.Zero);
    }

    [TestCaseSource(nameof(Vectors))]
    public void TheFiltersSumsOfSquaresAreTheDoubleSums(float[] vector)
    {
        var codes = new sbyte[Int8RowCodes.StrideOf(vector.Length)];
        var scale = (double)Int8RowCodes.Quantize(vector, codes, out _);

        var (error, dequantized, squares) = ExactSearchFilter.SumsOfSquares(vector, codes, scale);

        Assert.That(error, Is.EqualTo(vector.Select((v, i) => Math.Pow(v - (scale * codes[i]), 2)).Sum()).Within(1e-12).Percent);
        Assert.That(dequantized, Is.EqualTo(codes.Take(vector.Length).Select(c => Math.Pow(scale * c, 2)).Sum()).Within(1e-12).Percent);
        Assert.That(squares, Is.EqualTo(vector.Select(v => (double)v * v).Sum()).Within(1e-12).Percent);
    }
}
