using ReverseImageSearch.Local.VectorIndex;

namespace ReverseImageSearch.Tests.Local.VectorIndex;

public class QuantizedVectorSearchTests
{
    private static float[] UnitVector(Random random, int dimensions, bool nonNegative)
    {
        var vector = new float[dimensions];
        for (var i = 0; i < dimensions; i++)
        {
            var value = (float)((random.NextDouble() * 2) - 1);
            vector[i] = nonNegative ? Math.Max(0, value) : value;
        }

        var norm = MathF.Sqrt(vector.Sum(v => v * v));
        return vector.Select(v => v / norm).ToArray();
    }

    private static double Dot(float[] a, float[] b) => a.Zip(b, (x, y) => (double)x * y).Sum();

    [TestCase(1280, true)]
    [TestCase(100, false)]
    public void RecallAtTenAgainstExactInnerProductIsAtLeast99Percent(int dimensions, bool nonNegative)
    {
        var random = new Random(11);
        var vectors = Enumerable.Range(0, 5000).Select(_ => UnitVector(random, dimensions, nonNegative)).ToArray();
        var search = new QuantizedVectorSearch(dimensions);
        for (var i = 0; i < vectors.Length; i++)
        {
            search.Add($"v{i}", vectors[i]);
        }

        var found = 0;
        const int queries = 30;
        for (var q = 0; q < queries; q++)
        {
            // Near copies of stored vectors, as a copy-detection query is.
            var query = vectors[random.Next(vectors.Length)].Select(v => v + (float)(0.02 * ((random.NextDouble() * 2) - 1))).ToArray();
            var expected = vectors.Select((v, i) => (Id: $"v{i}", Score: Dot(query, v))).OrderByDescending(x => x.Score).Take(10).Select(x => x.Id).ToHashSet();
            var results = search.Search(query, 10);
            found += results.Count(r => expected.Contains(r.Id));
            Assert.That(results.Select(r => r.Distance), Is.Ordered.Descending);
        }

        Assert.That(found / (queries * 10.0), Is.GreaterThanOrEqualTo(0.99));
    }

    [Test]
    public void ReportsTheInnerProductLargestFirstAndHandlesFewRows()
    {
        var search = new QuantizedVectorSearch(3);
        search.Add("x", [1, 0, 0]);
        search.Add("y", [0, 1, 0]);
        search.Add("mixed", [0.6f, 0.8f, 0]);

        var results = search.Search([1, 0, 0], 5);

        Assert.That(results.Select(r => r.Id), Is.EqualTo(new[] { "x", "mixed", "y" }));
        Assert.That(results.Select(r => r.Distance), Is.EqualTo(new[] { 1.0, 0.6, 0.0 }).Within(1e-3));
    }

    [Test]
    public void UsesLessMemoryThanTheFloatVectors()
    {
        var search = new QuantizedVectorSearch(1280, capacity: 1000);
        Assert.That(search.VectorBytes, Is.LessThan(1000L * 1280 * sizeof(float)));
    }

    [Test]
    public void RejectsAWrongDimension()
    {
        var search = new QuantizedVectorSearch(4);
        Assert.Throws<ArgumentException>(() => search.Add("a", [1, 2, 3]));
        Assert.Throws<ArgumentException>(() => search.Search([1, 2, 3], 1));
    }
}

public class InProcessVectorIndexQuantizedTests
{
    private static float[] UnitVector(Random random, int dimensions)
    {
        var vector = Enumerable.Range(0, dimensions).Select(_ => (float)Math.Max(0, (random.NextDouble() * 2) - 1)).ToArray();
        var norm = MathF.Sqrt(vector.Sum(v => v * v));
        return vector.Select(v => v / norm).ToArray();
    }

    [TestCase(ReverseImageSearch.Core.Configuration.DistanceMeasure.DotProduct, false)]
    [TestCase(ReverseImageSearch.Core.Configuration.DistanceMeasure.Cosine, true)]
    public void QuantizedSearchFollowsUpsertsRemovesAndReportsVertexDistances(ReverseImageSearch.Core.Configuration.DistanceMeasure measure, bool normalize)
    {
        var random = new Random(5);
        using var exact = new InProcessVectorIndex(64, measure, normalize);
        using var quantized = new InProcessVectorIndex(64, measure, normalize, VectorSearchMode.Quantized);
        Assert.That(quantized.SearchMode, Is.EqualTo(VectorSearchMode.Quantized));
        var points = Enumerable.Range(0, 2000).Select(i => new ReverseImageSearch.Core.Ports.IndexDatapoint($"p{i}", UnitVector(random, 64))).ToList();
        exact.Upsert(points);
        quantized.Upsert(points);
        var removed = Enumerable.Range(0, 300).Select(i => $"p{i * 5}").ToList();
        exact.Remove(removed);
        quantized.Remove(removed);
        var replaced = Enumerable.Range(0, 100).Select(i => new ReverseImageSearch.Core.Ports.IndexDatapoint($"p{(i * 5) + 1}", UnitVector(random, 64))).ToList();
        exact.Upsert(replaced);
        quantized.Upsert(replaced);

        var hits = 0;
        for (var q = 0; q < 20; q++)
        {
            var query = UnitVector(random, 64);
            var expected = exact.Search(query, 10);
            var found = quantized.Search(query, 10);
            hits += found.Count(f => expected.Any(e => e.Id == f.Id));
            Assert.That(found.Select(f => f.Id), Has.None.AnyOf(removed.ToArray()));
            var common = found.Where(f => expected.Any(e => e.Id == f.Id)).ToList();
            Assert.That(common.Select(f => f.Distance), Is.EqualTo(common.Select(f => expected.First(e => e.Id == f.Id).Distance)).Within(2e-3));
        }

        Assert.That(hits / 200.0, Is.GreaterThanOrEqualTo(0.97));
        Assert.That(quantized.Count, Is.EqualTo(exact.Count));
    }

    [Test]
    public void OtherMeasuresKeepTheExactSearch()
    {
        using var index = new InProcessVectorIndex(8, ReverseImageSearch.Core.Configuration.DistanceMeasure.SquaredL2, searchMode: VectorSearchMode.Quantized);
        Assert.That(index.SearchMode, Is.EqualTo(VectorSearchMode.Float32Scan));
    }
}
