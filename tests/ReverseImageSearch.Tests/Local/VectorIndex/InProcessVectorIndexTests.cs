using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.VectorIndex;
using ReverseImageSearch.Tests.Local.Fakes;

namespace ReverseImageSearch.Tests.Local.VectorIndex;

public class InProcessVectorIndexTests
{
    private const int Dimensions = 8;

    // Distances straight from their definitions, in double precision, independent of the index's code.
    private static double SquaredL2(float[] a, float[] b) => a.Zip(b, (x, y) => ((double)x - y) * ((double)x - y)).Sum();

    private static double L1(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Sum();

    private static double Dot(float[] a, float[] b) => a.Zip(b, (x, y) => (double)x * y).Sum();

    private static double CosineDistance(float[] a, float[] b) => 1 - (Dot(a, b) / Math.Sqrt(Dot(a, a) * Dot(b, b)));

    [TestCase(DistanceMeasure.SquaredL2)]
    [TestCase(DistanceMeasure.L1)]
    [TestCase(DistanceMeasure.Cosine)]
    [TestCase(DistanceMeasure.DotProduct)]
    public void SearchReturnsTheExactNearestNeighborsWithVertexDistances(DistanceMeasure measure)
    {
        var random = new Random(7);
        var vectors = Enumerable.Range(0, 300).ToDictionary(i => $"v{i}", _ => RandomVector(random));
        using var index = new InProcessVectorIndex(Dimensions, measure);
        index.Upsert(vectors.Select(pair => new IndexDatapoint(pair.Key, pair.Value)).ToList());
        var query = RandomVector(random);

        var results = index.Search(query, 10);

        Func<float[], double> distance = measure switch
        {
            DistanceMeasure.SquaredL2 => v => SquaredL2(query, v),
            DistanceMeasure.L1 => v => L1(query, v),
            DistanceMeasure.Cosine => v => CosineDistance(query, v),
            _ => v => Dot(query, v),
        };
        var expected = vectors
            .Select(pair => (Id: pair.Key, Distance: distance(pair.Value)))
            .OrderBy(item => measure == DistanceMeasure.DotProduct ? -item.Distance : item.Distance)
            .Take(10)
            .ToList();
        Assert.That(results.Select(r => r.Id), Is.EqualTo(expected.Select(e => e.Id)));
        Assert.That(results.Select(r => r.Distance), Is.EqualTo(expected.Select(e => e.Distance)).Within(1e-4));
    }

    [Test]
    public void DotProductRanksTheLargestProductFirstAndReportsIt()
    {
        using var index = new InProcessVectorIndex(2, DistanceMeasure.DotProduct);
        index.Upsert([new("small", [1, 0]), new("large", [3, 0]), new("negative", [-2, 0])]);

        var results = index.Search([2, 0], 3);

        Assert.That(results, Is.EqualTo(new[] { new VectorMatch("large", 6), new VectorMatch("small", 2), new VectorMatch("negative", -4) }));
    }

    [Test]
    public void UnitNormalisationAppliesToStoredVectorsAndQueries()
    {
        using var index = new InProcessVectorIndex(2, DistanceMeasure.DotProduct, normalizeToUnitLength: true);
        index.Upsert([new("long", [10, 0]), new("diagonal", [1, 1])]);

        var results = index.Search([0, 5], 2);

        Assert.That(results[0].Id, Is.EqualTo("diagonal"));
        Assert.That(results[0].Distance, Is.EqualTo(Math.Sqrt(0.5)).Within(1e-6));
        Assert.That(results[1].Distance, Is.EqualTo(0).Within(1e-6));
        Assert.That(index.GetVector("long"), Is.EqualTo(new[] { 1f, 0f }));
    }

    [Test]
    public void UpsertReplacesAndRemoveForgets()
    {
        using var index = new InProcessVectorIndex(2, DistanceMeasure.SquaredL2);
        index.Upsert([new("a", [0, 0]), new("b", [5, 5]), new("c", [9, 9])]);

        index.Upsert("a", [100, 100]);
        Assert.That(index.Search([0, 0], 1)[0].Id, Is.EqualTo("b"));
        Assert.That(index.Count, Is.EqualTo(3));

        Assert.That(index.Remove(["b", "missing"]), Is.EqualTo(1));
        Assert.That(index.Search([0, 0], 5).Select(m => m.Id), Is.EqualTo(new[] { "c", "a" }));
        Assert.That(index.Contains("b"), Is.False);
        Assert.That(index.GetVector("a"), Is.EqualTo(new[] { 100f, 100f }));
        Assert.That(index.GetVector("c"), Is.EqualTo(new[] { 9f, 9f }));
    }

    [Test]
    public void WrongDimensionIsRejectedAndChangesNothing()
    {
        using var index = new InProcessVectorIndex(3, DistanceMeasure.L1);
        index.Upsert("a", [1, 2, 3]);

        Assert.Throws<ArgumentException>(() => index.Upsert([new("b", [1, 2, 3]), new("c", [1, 2])]));
        Assert.Throws<ArgumentException>(() => index.Search([1, 2], 1));
        Assert.That(index.Count, Is.EqualTo(1));
    }

    [Test]
    public void BatchQueriesAnswerInQueryOrderAndMatchSingleQueriesAcrossPartitions()
    {
        // Large enough that the scan is split across threads.
        const int dimensions = 256;
        var random = new Random(11);
        using var index = new InProcessVectorIndex(dimensions, DistanceMeasure.SquaredL2);
        var stored = Enumerable.Range(0, 12_000).Select(i => new IndexDatapoint($"id{i}", RandomVector(random, dimensions))).ToList();
        index.Upsert(stored);
        var queries = new[] { stored[42].FeatureVector, RandomVector(random, dimensions), stored[11_999].FeatureVector };

        var batch = index.SearchBatch(queries, 5);

        Assert.That(batch, Has.Count.EqualTo(3));
        Assert.That(batch[0][0], Is.EqualTo(new VectorMatch("id42", 0)));
        Assert.That(batch[2][0], Is.EqualTo(new VectorMatch("id11999", 0)));
        var expectedForSecond = stored.OrderBy(d => SquaredL2(queries[1], d.FeatureVector)).Take(5).Select(d => d.DatapointId);
        Assert.That(batch[1].Select(m => m.Id), Is.EqualTo(expectedForSecond));
        Assert.That(index.Search(queries[1], 5), Is.EqualTo(batch[1]));
    }

    [Test]
    public void FewerStoredVectorsThanAskedReturnsAllOfThem()
    {
        using var index = new InProcessVectorIndex(2, DistanceMeasure.L1);
        Assert.That(index.Search([0, 0], 3), Is.Empty);
        index.Upsert("a", [1, 1]);
        Assert.That(index.Search([0, 0], 3), Is.EqualTo(new[] { new VectorMatch("a", 2) }));
    }

    [Test]
    public void ADurableIndexSurvivesReopenAfterManyOperationsAndCompactions()
    {
        using var temp = new TempDirectory();
        var random = new Random(3);
        var expected = new Dictionary<string, float[]>();
        using (var index = InProcessVectorIndex.Open(temp.Path, Dimensions, DistanceMeasure.SquaredL2, false, NullLogger.Instance))
        {
            index.CompactionThresholdBytes = 4096; // force several compactions along the way
            for (var i = 0; i < 2_000; i++)
            {
                var id = $"id{random.Next(300)}";
                if (random.Next(4) == 0)
                {
                    index.Remove([id]);
                    expected.Remove(id);
                }
                else
                {
                    var vector = RandomVector(random);
                    index.Upsert(id, vector);
                    expected[id] = vector;
                }
            }
        }

        using var reopened = InProcessVectorIndex.Open(temp.Path, Dimensions, DistanceMeasure.SquaredL2, false, NullLogger.Instance);

        Assert.That(reopened.Count, Is.EqualTo(expected.Count));
        foreach (var (id, vector) in expected)
        {
            Assert.That(reopened.GetVector(id), Is.EqualTo(vector), id);
        }
    }

    [Test]
    public void EveryAcknowledgedWriteSurvivesWithoutCompactionAndATornTailIsDropped()
    {
        using var temp = new TempDirectory();
        using (var index = InProcessVectorIndex.Open(temp.Path, 2, DistanceMeasure.L1, false, NullLogger.Instance))
        {
            index.Upsert([new("a", [1, 2]), new("b", [3, 4])]);
            index.Remove(["a"]);
            index.Upsert("c", [5, 6]);
        }

        // A crash in the middle of appending leaves part of a record at the end of the log.
        var log = Directory.GetFiles(temp.Path, "*.log").Single();
        File.AppendAllBytes(log, [200, 0, 0, 0, 1, 2, 3]);

        using (var reopened = InProcessVectorIndex.Open(temp.Path, 2, DistanceMeasure.L1, false, NullLogger.Instance))
        {
            Assert.That(reopened.Contains("a"), Is.False);
            Assert.That(reopened.GetVector("b"), Is.EqualTo(new[] { 3f, 4f }));
            Assert.That(reopened.GetVector("c"), Is.EqualTo(new[] { 5f, 6f }));
            reopened.Upsert("d", [7, 8]);
        }

        using var again = InProcessVectorIndex.Open(temp.Path, 2, DistanceMeasure.L1, false, NullLogger.Instance);
        Assert.That(again.GetVector("d"), Is.EqualTo(new[] { 7f, 8f }));
        Assert.That(again.Count, Is.EqualTo(3));
    }

    [Test]
    public void ReopeningWithOtherDimensionsIsRefused()
    {
        using var temp = new TempDirectory();
        using (var index = InProcessVectorIndex.Open(temp.Path, 2, DistanceMeasure.L1, false, NullLogger.Instance))
        {
            index.Upsert("a", [1, 2]);
            index.Compact();
        }

        Assert.Throws<InvalidDataException>(() => InProcessVectorIndex.Open(temp.Path, 3, DistanceMeasure.L1, false, NullLogger.Instance).Dispose());
    }

    // Every search mode, on a size and dimension where the int8 paths are taken without a folder: a folder search
    // answers the nearest among the folder's images only, as many as asked for, whatever is nearer elsewhere.
    [TestCase(VectorSearchMode.Exact, DistanceMeasure.DotProduct)]
    [TestCase(VectorSearchMode.Quantized, DistanceMeasure.Cosine)]
    [TestCase(VectorSearchMode.Float32Scan, DistanceMeasure.SquaredL2)]
    public void AFolderSearchAnswersTheNearestUnderTheFolderOnly(VectorSearchMode mode, DistanceMeasure measure)
    {
        const int dimensions = 64;
        var random = new Random(11);
        string[] folders = ["shop/dresses", "shop/dresses/red", "shop/shoes", "other"];
        var stored = Enumerable.Range(0, 3000)
            .Select(i => IndexDatapoint.ForImage($"{folders[i % folders.Length]}/{i}.jpg", RandomVector(random, dimensions)))
            .Append(IndexDatapoint.ForImage("shop/dresses.jpg", RandomVector(random, dimensions)))
            .Append(IndexDatapoint.ForImage("shop/dressesx/1.jpg", RandomVector(random, dimensions)))
            .ToList();
        using var index = new InProcessVectorIndex(dimensions, measure, normalizeToUnitLength: measure == DistanceMeasure.Cosine, searchMode: mode);
        index.Upsert(stored);
        var query = RandomVector(random, dimensions);
        // The whole index's nearest is put outside the folder: a filter applied after the search would lose a place.
        index.Upsert("other/nearest.jpg", query);

        var answers = index.Search([new NeighborQuery("q", query, "shop/dresses"), new NeighborQuery("all", query)], 25);

        Func<float[], double> distance = measure switch
        {
            DistanceMeasure.SquaredL2 => v => SquaredL2(query, v),
            DistanceMeasure.Cosine => v => CosineDistance(query, v),
            _ => v => -Dot(query, v),
        };
        var expected = stored
            .Where(d => d.DatapointId.StartsWith("shop/dresses/", StringComparison.Ordinal))
            .OrderBy(d => distance(d.FeatureVector))
            .Take(25)
            .Select(d => d.DatapointId);
        Assert.That(answers[0].Select(m => m.Id), Is.EqualTo(expected), "the 25 nearest of shop/dresses and shop/dresses/red, exactly");
        Assert.That(answers[1][0].Id, Is.EqualTo("other/nearest.jpg"), "the query without a folder still searches everything");
    }

    [Test]
    public void ViewsSurviveCompactionsAndReopenAndStayOutOfTheImageCount()
    {
        using var temp = new TempDirectory();
        var random = new Random(9);
        var expected = new Dictionary<string, float[]>();
        using (var index = InProcessVectorIndex.Open(temp.Path, Dimensions, DistanceMeasure.SquaredL2, false, NullLogger.Instance))
        {
            index.CompactionThresholdBytes = 2048; // several compactions, with views in the snapshot
            for (var i = 0; i < 1_500; i++)
            {
                var image = $"a/{random.Next(60)}.jpg";
                var id = random.Next(2) == 0 ? image : ImageViews.Id(image, ImageViews.Names[random.Next(ImageViews.Names.Count)]);
                if (random.Next(4) == 0)
                {
                    index.Remove([id]);
                    expected.Remove(id);
                }
                else
                {
                    var vector = RandomVector(random);
                    index.Upsert(id, vector);
                    expected[id] = vector;
                }
            }
        }

        using var reopened = InProcessVectorIndex.Open(temp.Path, Dimensions, DistanceMeasure.SquaredL2, false, NullLogger.Instance);

        var images = expected.Where(pair => !ImageViews.IsView(pair.Key)).ToList();
        Assert.That((reopened.Count, reopened.ViewCount), Is.EqualTo((images.Count, expected.Count - images.Count)));
        foreach (var (id, vector) in expected)
        {
            // Each stored datapoint answers as itself (an image) or for its image (a view, when the image is there).
            var answer = reopened.Search(vector, images.Count);
            var image = ImageViews.ImageOf(id);
            if (expected.ContainsKey(image))
            {
                Assert.That(answer.Single(m => m.Id == image).Distance, Is.Zero, id);
            }
            else
            {
                Assert.That(answer.Select(m => m.Id), Does.Not.Contain(image), id);
            }

            Assert.That(answer.Select(m => m.Id), Is.Unique, id);
            Assert.That(answer.Any(m => ImageViews.IsView(m.Id)), Is.False, id);
        }
    }

    // On a size and dimension where the int8 paths are taken, views rescore the shortlist of every mode.
    [TestCase(VectorSearchMode.Exact, DistanceMeasure.DotProduct)]
    [TestCase(VectorSearchMode.Quantized, DistanceMeasure.Cosine)]
    [TestCase(VectorSearchMode.Float32Scan, DistanceMeasure.L1)]
    public void EveryModeAnswersKDistinctImagesWithAViewsImageFirst(VectorSearchMode mode, DistanceMeasure measure)
    {
        const int dimensions = 64;
        var random = new Random(4);
        var images = Enumerable.Range(0, 3000).Select(i => (Id: $"x/{i}.jpg", Vector: RandomVector(random, dimensions))).ToList();
        using var index = new InProcessVectorIndex(dimensions, measure, normalizeToUnitLength: measure == DistanceMeasure.Cosine, searchMode: mode);
        index.Upsert(images.Select(image => IndexDatapoint.ForImage(image.Id, image.Vector)).ToList());
        // A view near its image (as measured views are: cosine about 0.9), and the query nearer the view than any datapoint.
        var (targetId, targetVector) = images[1234];
        var view = targetVector.Select(x => x + (0.3f * (float)((random.NextDouble() * 2) - 1))).ToArray();
        index.Upsert([IndexDatapoint.ForView(targetId, new ImageView(ImageViews.EndSquare, view))]);
        var query = view.Select(x => x * 1.01f).ToArray();

        var answer = index.Search(query, 25);

        Assert.That(answer, Has.Count.EqualTo(25));
        Assert.That(answer.Select(m => m.Id), Is.Unique);
        Assert.That(answer[0].Id, Is.EqualTo(targetId));
        var alone = new InProcessVectorIndex(dimensions, measure, normalizeToUnitLength: measure == DistanceMeasure.Cosine, searchMode: VectorSearchMode.Float32Scan);
        using (alone)
        {
            alone.Upsert("view", view);
            Assert.That(answer[0].Distance, Is.EqualTo(alone.Search(query, 1)[0].Distance).Within(1e-3), "the view's distance");
        }
    }

    [Test]
    public void ReadGivesTheStoredVectorWithTheFoldersOfItsIdAndLeavesOutUnknownIds()
    {
        using var index = new InProcessVectorIndex(3, DistanceMeasure.Cosine, normalizeToUnitLength: true);
        index.Upsert("a/b/c.jpg", [3, 0, 4]);

        var read = index.Read(["a/b/c.jpg", "missing.jpg", "a/b/c.jpg"]);

        Assert.That(read, Has.Count.EqualTo(1));
        Assert.That(read[0].FeatureVector, Is.EqualTo(new[] { 0.6f, 0, 0.8f }), "as stored: normalised");
        Assert.That(read[0].Folders, Is.EqualTo(new[] { "a", "a/b" }));
    }

    private static float[] RandomVector(Random random, int dimensions = Dimensions) =>
        Enumerable.Range(0, dimensions).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
}
