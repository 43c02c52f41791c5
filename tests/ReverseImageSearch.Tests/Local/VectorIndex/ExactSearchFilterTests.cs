using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.VectorIndex;
using ReverseImageSearch.Tests.Local.Fakes;

namespace ReverseImageSearch.Tests.Local.VectorIndex;

/// <summary>
/// The int8-filtered exact search (the default mode) against the plain float32 scan on the same data: the same ids,
/// the same distances to the bit, in the same order, for every query.
/// </summary>
public class ExactSearchFilterTests
{
    private const int Dimensions = 100; // not a multiple of 32: the codes' padding is exercised

    /// <summary>Without 256-bit vectors the index scans instead, and only the comparisons with the scan apply.</summary>
    private static readonly bool FilterApplies = ExactSearchFilter.Supports(Dimensions);

    private static VectorSearchMode FilteredMode => FilterApplies ? VectorSearchMode.Exact : VectorSearchMode.Float32Scan;

    public enum Shape
    {
        /// <summary>Like this model's embeddings: non-negative, sparse-ish, around cluster centres, unit length.</summary>
        ClusteredEmbeddings,

        /// <summary>Gaussian components, negative ones included, unit length.</summary>
        Gaussian,

        /// <summary>Gaussian directions with lengths from 0.05 to 20, and a few zero vectors.</summary>
        NonUnitLengths,

        /// <summary>Copies of a few vectors, some exact, some nudged far below an int8 step: ties and near ties.</summary>
        NearDuplicates,
    }

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var seed in new[] { 1, 2, 3 })
        {
            yield return new TestCaseData(Shape.ClusteredEmbeddings, DistanceMeasure.Cosine, true, seed);
            yield return new TestCaseData(Shape.ClusteredEmbeddings, DistanceMeasure.DotProduct, false, seed);
            yield return new TestCaseData(Shape.Gaussian, DistanceMeasure.DotProduct, false, seed);
            yield return new TestCaseData(Shape.Gaussian, DistanceMeasure.Cosine, true, seed);
            yield return new TestCaseData(Shape.NonUnitLengths, DistanceMeasure.DotProduct, false, seed);
            yield return new TestCaseData(Shape.NonUnitLengths, DistanceMeasure.Cosine, false, seed);
            yield return new TestCaseData(Shape.NearDuplicates, DistanceMeasure.DotProduct, false, seed);
            yield return new TestCaseData(Shape.NearDuplicates, DistanceMeasure.Cosine, true, seed);
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void FilteredSearchReturnsWhatTheFloat32ScanReturnsBeforeAndAfterOverwritesAndRemoves(
        Shape shape, DistanceMeasure measure, bool normalize, int seed)
    {
        var random = new Random(seed);
        var generate = Generator(shape, random, Dimensions);
        using var scan = new InProcessVectorIndex(Dimensions, measure, normalize, VectorSearchMode.Float32Scan);
        using var filtered = new InProcessVectorIndex(Dimensions, measure, normalize);
        Assert.That(filtered.SearchMode, Is.EqualTo(FilteredMode));
        using var rowsScored = new RowsScored();
        void Upsert(IReadOnlyList<IndexDatapoint> points)
        {
            scan.Upsert(points);
            filtered.Upsert(points);
        }

        void Remove(IReadOnlyList<string> ids)
        {
            scan.Remove(ids);
            filtered.Remove(ids);
        }

        Upsert(Enumerable.Range(0, 2500).Select(i => new IndexDatapoint($"p{i}", generate())).ToList());
        AssertSameAnswers(scan, filtered, Queries(random, filtered, generate));

        // Overwrites (rows change in place), removes (the last rows move into the holes), and new rows.
        Upsert(Enumerable.Range(0, 300).Select(i => new IndexDatapoint($"p{random.Next(2500)}", generate())).ToList());
        Remove(Enumerable.Range(0, 400).Select(_ => $"p{random.Next(2500)}").Distinct().ToList());
        Upsert(Enumerable.Range(2500, 200).Select(i => new IndexDatapoint($"p{i}", generate())).ToList());
        Assert.That(filtered.Count, Is.EqualTo(scan.Count));
        AssertSameAnswers(scan, filtered, Queries(random, filtered, generate));
        Assert.That(rowsScored.Queries, FilterApplies ? Is.GreaterThan(0) : Is.Zero);
    }

    /// <summary>The same rows in the float32 scan, the filtered exact search and the int8 codes alone.</summary>
    private static (InProcessVectorIndex Scan, InProcessVectorIndex Filtered, QuantizedVectorSearch Int8Only) IndexAllThreeWays(
        IReadOnlyList<IndexDatapoint> points)
    {
        var scan = new InProcessVectorIndex(Dimensions, DistanceMeasure.DotProduct, searchMode: VectorSearchMode.Float32Scan);
        var filtered = new InProcessVectorIndex(Dimensions, DistanceMeasure.DotProduct);
        var int8Only = new QuantizedVectorSearch(Dimensions);
        scan.Upsert(points);
        filtered.Upsert(points);
        foreach (var point in points)
        {
            int8Only.Add(point.DatapointId, point.FeatureVector);
        }

        return (scan, filtered, int8Only);
    }

    [Test]
    public void TheBoundsAreNeededWhereTheInt8OrderDiffersFromTheExactOrder()
    {
        Assume.That(FilterApplies, "the int8 filter needs 256-bit vectors");
        // Rows differing by much less than an int8 step: their codes alone cannot order them.
        var random = new Random(9);
        var generate = Generator(Shape.NearDuplicates, random, Dimensions);
        var points = Enumerable.Range(0, 3000).Select(i => new IndexDatapoint($"p{i}", generate())).ToList();
        var indexes = IndexAllThreeWays(points);
        using var scan = indexes.Scan;
        using var filtered = indexes.Filtered;
        var int8Only = indexes.Int8Only;

        const int K = 10;
        var queries = Enumerable.Range(0, 20).Select(_ => generate()).ToList();
        using var rowsScored = new RowsScored();
        var differing = 0;
        foreach (var query in queries)
        {
            var exact = scan.Search(query, K);
            // Rescoring only the int8 scan's own top k keeps its choice of rows: the set the codes alone pick.
            var fromCodes = int8Only.Search(query, K, candidates: K);
            differing += fromCodes.Select(m => m.Id).ToHashSet().SetEquals(exact.Select(m => m.Id)) ? 0 : 1;
            Assert.That(filtered.Search(query, K), Is.EqualTo(exact));
        }

        Assert.That(differing, Is.GreaterThan(0), "the codes alone should pick other rows for some query");
        Assert.That(rowsScored.Rows, Is.GreaterThan(queries.Count * K), "the bounds should have called in more rows than k");
    }

    [Test]
    public void TheBoundsHoldWhereTheQueryLinesUpWithARowsRoundingError()
    {
        Assume.That(FilterApplies, "the int8 filter needs 256-bit vectors");
        // A query along row a's int8 rounding error: Cauchy-Schwarz is tight, the codes underrate a by the whole
        // error, and row b, a quarter of that error below a, looks better from the codes. A bound under about
        // three quarters of the true one would leave a unscored.
        var random = new Random(12);
        var a = Unit(Gaussian(random, Dimensions));
        var codes = new sbyte[Int8RowCodes.StrideOf(Dimensions)];
        var scale = (double)Int8RowCodes.Quantize(a, codes, out _);
        var query = Unit(a.Select((v, i) => (float)(v - (scale * codes[i]))).ToArray());
        var errorNorm = Math.Sqrt(a.Select((v, i) => Math.Pow(v - (scale * codes[i]), 2)).Sum());
        var aScore = a.Zip(query, (x, y) => (double)x * y).Sum();
        var b = query.Select(v => (float)(v * (aScore - (0.25 * errorNorm)))).ToArray();
        var points = new List<IndexDatapoint> { new("a", a), new("b", b) };
        points.AddRange(Enumerable.Range(0, 50).Select(i => new IndexDatapoint($"far{i}", Nudged(random, query.Select(v => -v).ToArray(), 0.05f))));
        var indexes = IndexAllThreeWays(points);
        using var scan = indexes.Scan;
        using var filtered = indexes.Filtered;
        var int8Only = indexes.Int8Only;

        var exact = scan.Search(query, 1);
        using var rowsScored = new RowsScored();

        Assert.That(exact.Single().Id, Is.EqualTo("a"));
        Assert.That(int8Only.Search(query, 1, candidates: 1).Single().Id, Is.EqualTo("b"));
        Assert.That(filtered.Search(query, 1), Is.EqualTo(exact));
        Assert.That(rowsScored.Rows, Is.EqualTo(2), "b first by the codes, then a by its bound");
    }

    [Test]
    public void OnClusteredEmbeddingsFewRowsAreScoredInFloat32()
    {
        Assume.That(FilterApplies, "the int8 filter needs 256-bit vectors");
        const int dimensions = 1280;
        const int count = 20_000;
        var random = new Random(4);
        var generate = Generator(Shape.ClusteredEmbeddings, random, dimensions, clusters: 200);
        var points = Enumerable.Range(0, count).Select(i => new IndexDatapoint($"p{i}", generate())).ToList();
        using var scan = new InProcessVectorIndex(dimensions, DistanceMeasure.DotProduct, searchMode: VectorSearchMode.Float32Scan);
        using var filtered = new InProcessVectorIndex(dimensions, DistanceMeasure.DotProduct);
        scan.Upsert(points);
        filtered.Upsert(points);

        // Half near copies of stored vectors (copy detection), half fresh vectors.
        var queries = Enumerable.Range(0, 20)
            .Select(q => q % 2 == 0 ? Nudged(random, points[random.Next(count)].FeatureVector, 0.01f) : generate())
            .ToArray();
        using var rowsScored = new RowsScored();
        var answers = filtered.SearchBatch(queries, 10);

        TestContext.Out.WriteLine($"mean rows scored in float32: {rowsScored.MeanRows:F1} of {count}");
        Assert.That(rowsScored.Queries, Is.EqualTo(queries.Length));
        Assert.That(rowsScored.MeanRows, Is.LessThan(0.05 * count));
        Assert.That(answers, Is.EqualTo(scan.SearchBatch(queries, 10)));
    }

    [Test]
    public void EqualDistancesRankByIdWhicheverThreadsScanned()
    {
        // Identical vectors all tie; the rows are split across threads in the batch.
        const int dimensions = 256;
        var vector = Enumerable.Range(0, dimensions).Select(i => (float)Math.Sin(i)).ToArray();
        var ids = Enumerable.Range(0, 12_000).Select(i => $"id{i}").OrderBy(_ => Random.Shared.Next()).ToList();
        foreach (var mode in new[] { VectorSearchMode.Float32Scan, VectorSearchMode.Exact })
        {
            using var index = new InProcessVectorIndex(dimensions, DistanceMeasure.DotProduct, searchMode: mode);
            index.Upsert(ids.Select(id => new IndexDatapoint(id, vector)).ToList());
            var expected = ids.Order(StringComparer.Ordinal).Take(5).ToArray();

            var batch = index.SearchBatch([vector, vector, vector], 5);

            Assert.That(batch.Select(answer => answer.Select(m => m.Id)), Has.All.EqualTo(expected), mode.ToString());
            Assert.That(index.Search(vector, 5).Select(m => m.Id), Is.EqualTo(expected), mode.ToString());
        }
    }

    [Test]
    public void AReopenedIndexRebuildsItsCodesFromTheJournal()
    {
        Assume.That(FilterApplies, "the int8 filter needs 256-bit vectors");
        using var temp = new TempDirectory();
        var random = new Random(6);
        var generate = Generator(Shape.ClusteredEmbeddings, random, Dimensions);
        using var scan = new InProcessVectorIndex(Dimensions, DistanceMeasure.Cosine, true, VectorSearchMode.Float32Scan);
        using (var index = InProcessVectorIndex.Open(temp.Path, Dimensions, DistanceMeasure.Cosine, true, NullLogger.Instance))
        {
            index.CompactionThresholdBytes = 64 << 10; // a snapshot and a log both to replay
            for (var batch = 0; batch < 60; batch++)
            {
                var points = Enumerable.Range(0, 50).Select(_ => new IndexDatapoint($"p{random.Next(2000)}", generate())).DistinctBy(p => p.DatapointId).ToList();
                index.Upsert(points);
                scan.Upsert(points);
                var removed = Enumerable.Range(0, 7).Select(_ => $"p{random.Next(2000)}").ToList();
                index.Remove(removed);
                scan.Remove(removed);
            }
        }

        using var reopened = InProcessVectorIndex.Open(temp.Path, Dimensions, DistanceMeasure.Cosine, true, NullLogger.Instance);
        using var empty = InProcessVectorIndex.Open(temp.Sub("empty"), Dimensions, DistanceMeasure.Cosine, true, NullLogger.Instance);

        Assert.That(empty.Search(generate(), 3), Is.Empty);
        Assert.That(reopened.SearchMode, Is.EqualTo(VectorSearchMode.Exact));
        var queries = Enumerable.Range(0, 10).Select(_ => generate()).ToArray();
        using (var rowsScored = new RowsScored())
        {
            Assert.That(reopened.SearchBatch(queries, 10), Is.EqualTo(scan.SearchBatch(queries, 10)));
            Assert.That(rowsScored.Queries, Is.EqualTo(queries.Length));
            Assert.That(rowsScored.MeanRows, Is.LessThan(reopened.Count / 2.0), "the codes should filter after a reload");
        }

        // Rebuilt codes stay in step with later writes: appends past the rebuilt arrays, overwrites and removes.
        var more = Enumerable.Range(0, 3000).Select(i => new IndexDatapoint($"n{i}", generate())).ToList();
        reopened.Upsert(more);
        scan.Upsert(more);
        var forgotten = Enumerable.Range(0, 500).Select(i => $"p{i}").ToList();
        reopened.Remove(forgotten);
        scan.Remove(forgotten);
        Assert.That(reopened.SearchBatch(queries, 10), Is.EqualTo(scan.SearchBatch(queries, 10)));
    }

    [Test]
    public void OnlyInnerProductMeasuresAreFiltered()
    {
        using var squaredL2 = new InProcessVectorIndex(8, DistanceMeasure.SquaredL2);
        using var l1 = new InProcessVectorIndex(8, DistanceMeasure.L1);
        using var dot = new InProcessVectorIndex(8, DistanceMeasure.DotProduct);
        using var cosine = new InProcessVectorIndex(8, DistanceMeasure.Cosine);
        Assert.That(squaredL2.SearchMode, Is.EqualTo(VectorSearchMode.Float32Scan));
        Assert.That(l1.SearchMode, Is.EqualTo(VectorSearchMode.Float32Scan));
        Assert.That(dot.SearchMode, Is.EqualTo(FilteredMode));
        Assert.That(cosine.SearchMode, Is.EqualTo(FilteredMode));
    }

    [Test]
    public void EmptyIndexesAndZeroQueriesAnswerAsTheScanDoes()
    {
        using var scan = new InProcessVectorIndex(40, DistanceMeasure.Cosine, true, VectorSearchMode.Float32Scan);
        using var filtered = new InProcessVectorIndex(40, DistanceMeasure.Cosine, true);
        var zero = new float[40];
        Assert.That(filtered.Search(zero, 5), Is.Empty);

        var random = new Random(8);
        var generate = Generator(Shape.NonUnitLengths, random, 40);
        var points = Enumerable.Range(0, 500).Select(i => new IndexDatapoint($"p{i}", generate())).ToList();
        scan.Upsert(points);
        filtered.Upsert(points);

        foreach (var k in new[] { 0, 1, 10, 499, 500, 501 })
        {
            Assert.That(filtered.Search(zero, k), Is.EqualTo(scan.Search(zero, k)), $"k={k}");
        }
    }

    private static void AssertSameAnswers(InProcessVectorIndex scan, InProcessVectorIndex filtered, float[][] queries)
    {
        foreach (var k in new[] { 1, 10, 100, scan.Count + 5 })
        {
            var expected = scan.SearchBatch(queries, k);
            var actual = filtered.SearchBatch(queries, k);
            for (var q = 0; q < queries.Length; q++)
            {
                Assert.That(actual[q], Is.EqualTo(expected[q]), $"query {q}, k={k}");
            }

            // One at a time too: a single query is scanned on one thread.
            Assert.That(filtered.Search(queries[0], k), Is.EqualTo(expected[0]), $"single query, k={k}");
        }
    }

    /// <summary>Twelve queries (a block of eight and one of four): near copies of stored vectors, and fresh ones.</summary>
    private static float[][] Queries(Random random, InProcessVectorIndex index, Func<float[]> generate) =>
        Enumerable.Range(0, 12)
            .Select(q => q % 3 == 0 ? generate() : Nudged(random, index.GetVector($"p{random.Next(2500)}") ?? generate(), 0.02f))
            .ToArray();

    private static Func<float[]> Generator(Shape shape, Random random, int dimensions, int clusters = 25)
    {
        switch (shape)
        {
            case Shape.ClusteredEmbeddings:
            {
                var centres = Enumerable.Range(0, clusters)
                    .Select(_ => Enumerable.Range(0, dimensions).Select(_ => random.NextDouble() < 0.6 ? 0f : (float)(-Math.Log(1 - random.NextDouble()) * 1.5)).ToArray())
                    .ToArray();
                return () =>
                {
                    var centre = centres[random.Next(centres.Length)];
                    return Unit(centre.Select(c => Math.Max(0, c + (float)(((random.NextDouble() * 2) - 1) * 1.0))).ToArray());
                };
            }

            case Shape.Gaussian:
                return () => Unit(Gaussian(random, dimensions));
            case Shape.NonUnitLengths:
                return () =>
                {
                    if (random.Next(50) == 0)
                    {
                        return new float[dimensions];
                    }

                    var length = (float)Math.Exp((random.NextDouble() * 6) - 3);
                    return Unit(Gaussian(random, dimensions)).Select(v => v * length).ToArray();
                };
            default:
            {
                var originals = Enumerable.Range(0, 6).Select(_ => Unit(Gaussian(random, dimensions))).ToArray();
                return () =>
                {
                    var original = originals[random.Next(originals.Length)];
                    return random.Next(4) switch
                    {
                        0 => original.ToArray(),
                        1 when random.Next(10) == 0 => new float[dimensions],
                        _ => original.Select(v => v + (float)(1e-4 * Gaussian(random, 1)[0])).ToArray(),
                    };
                };
            }
        }
    }

    private static float[] Nudged(Random random, float[] vector, float noise) =>
        vector.Select(v => v + (noise * (float)((random.NextDouble() * 2) - 1))).ToArray();

    private static float[] Gaussian(Random random, int dimensions) =>
        Enumerable.Range(0, dimensions)
            .Select(_ => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble())))
            .ToArray();

    private static float[] Unit(float[] vector)
    {
        var norm = MathF.Sqrt(vector.Sum(v => v * v));
        return norm == 0 ? vector : vector.Select(v => v / norm).ToArray();
    }
}
