using System.Diagnostics;
using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using ReverseImageSearch.Embedding;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// MATCH_COLOR and region vectors, measured in memory on three sets (issue 12, items 2 and 5):
///   --dataset DIR     the copy-detection set of <see cref="RetrievalQuality"/> (recall@1 per transform);
///   --categories DIR  the category set of make_categories.py: pictures/CATEGORY__NAME.png (leave-one-out mAP, P@1,
///                     P@10) and rotated/ (the same pictures with the hue turned 120 degrees: how often a picture's
///                     rotated copy is its nearest neighbour among all other pictures and that copy).
/// For luma input (MATCH_COLOR=false) and colour input (MATCH_COLOR=true), with the product's preprocessing, power
/// normalisation and unit vectors, the global vector alone and with region vectors beside it. A region vector is the
/// average of a window of the model's last 7x7 feature map (<c>out_relu</c>, the map the global vector averages, so the
/// same inference), power-normalised and scaled to unit length; an indexed image scores its best vector (the answer's
/// dedup per image). Queries use the global vector only. --model must expose <c>out_relu</c> [N, 1280, 7, 7] beside
/// <c>embedding</c> (benchmarks/quality/feature_map_model.py writes one). --cost DIR: images/s of the product's embedder
/// on the images of DIR for both settings.
/// </summary>
internal static class ColourAndRegions
{
    private const int Side = 224;
    private const int Map = 7;

    /// <summary>Windows of the 7x7 map: (row, column, height, width).</summary>
    private static readonly Dictionary<string, (int Y, int X, int H, int W)[]> RegionSets = new(StringComparer.Ordinal)
    {
        ["none"] = [],
        ["corners5"] = [(0, 0, 5, 5), (0, 2, 5, 5), (2, 0, 5, 5), (2, 2, 5, 5)],
        ["corners5+centre5"] = [(0, 0, 5, 5), (0, 2, 5, 5), (2, 0, 5, 5), (2, 2, 5, 5), (1, 1, 5, 5)],
        ["corners4"] = [(0, 0, 4, 4), (0, 3, 4, 4), (2, 0, 4, 4), (3, 3, 4, 4)],
        ["grid9of4"] = [.. from y in new[] { 0, 1, 3 } from x in new[] { 0, 2, 3 } select (y, x, 4, 4)],
        ["corners6"] = [(0, 0, 6, 6), (0, 1, 6, 6), (1, 0, 6, 6), (1, 1, 6, 6)],
        ["centre5"] = [(1, 1, 5, 5)],
        ["corners5+corners4"] = [(0, 0, 5, 5), (0, 2, 5, 5), (2, 0, 5, 5), (2, 2, 5, 5), (0, 0, 4, 4), (0, 3, 4, 4), (3, 0, 4, 4), (3, 3, 4, 4)],
    };

    public static Task<int> RunAsync(Cli cli)
    {
        var model = cli.Require("model");
        var dataset = cli.Get("dataset", "");
        var categories = cli.Get("categories", "");
        var sets = cli.Get("regions", string.Join(',', RegionSets.Keys)).Split(',');
        using var session = new InferenceSession(model, new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL });
        var clock = Stopwatch.StartNew();
        var report = new List<object>();
        foreach (var (mode, grayscale) in new[] { ("MATCH_COLOR=false (luma)", true), ("MATCH_COLOR=true (colour)", false) })
        {
            var preprocessor = new ImagePreprocessor(Side, Side, 50_000_000, grayscale);
            object? copies = null;
            if (dataset.Length > 0)
            {
                copies = CopyDetection(session, preprocessor, dataset, sets);
            }

            object? cats = null;
            if (categories.Length > 0)
            {
                cats = Categories(session, preprocessor, categories);
            }

            report.Add(new { mode, copyDetection = copies, categories = cats });
        }

        var cost = cli.Get("cost", "") is { Length: > 0 } costImages ? Cost(costImages, cli.Int("blocks", 6)) : null;
        cli.Emit(new { model, dataset, categories, seconds = Math.Round(clock.Elapsed.TotalSeconds, 1), modes = report, cost });
        return Task.FromResult(0);
    }

    /// <summary>
    /// Images/s of the product's embedder (bundled model, decode included, batches of 8, default threads) for both
    /// MATCH_COLOR settings, in alternating blocks so a burst of load from other processes hits both.
    /// </summary>
    private static object Cost(string folder, int blocks)
    {
        var images = Directory.GetFiles(folder).Order(StringComparer.Ordinal).Select(f => (ReadOnlyMemory<byte>)File.ReadAllBytes(f)).ToArray();
        var modes = new[] { ("MATCH_COLOR=false (luma)", true), ("MATCH_COLOR=true (colour)", false) };
        var embedders = modes.Select(m => new OnnxImageEmbedder(
            new EmbedderOptions(EmbedderOptions.BundledModelPath, Grayscale: m.Item2), Microsoft.Extensions.Logging.Abstractions.NullLogger<OnnxImageEmbedder>.Instance)).ToArray();
        try
        {
            var seconds = new double[modes.Length];
            foreach (var embedder in embedders)
            {
                embedder.EmbedAsync(images).GetAwaiter().GetResult();
            }

            for (var block = 0; block < blocks; block++)
            {
                for (var m = 0; m < modes.Length; m++)
                {
                    var watch = Stopwatch.StartNew();
                    embedders[m].EmbedAsync(images).GetAwaiter().GetResult();
                    seconds[m] += watch.Elapsed.TotalSeconds;
                }
            }

            return new
            {
                images = images.Length,
                blocks,
                imagesPerSecond = modes.Select((m, i) => new { mode = m.Item1, value = Math.Round(blocks * images.Length / seconds[i], 1) }).ToArray(),
            };
        }
        finally
        {
            foreach (var embedder in embedders)
            {
                embedder.Dispose();
            }
        }
    }

    private static object CopyDetection(InferenceSession session, ImagePreprocessor preprocessor, string dataset, string[] sets)
    {
        var indexFiles = Directory.GetFiles(Path.Combine(dataset, "index")).Order(StringComparer.Ordinal).ToArray();
        var queryFiles = Directory.GetDirectories(Path.Combine(dataset, "queries"))
            .SelectMany(dir => Directory.GetFiles(dir).Select(f => (Transform: Path.GetFileName(dir), Path: f)))
            .OrderBy(q => q.Path, StringComparer.Ordinal).ToArray();
        var indexIds = indexFiles.Select(Path.GetFileNameWithoutExtension).ToArray();
        var indexMaps = Maps(session, preprocessor, indexFiles);
        var queries = Maps(session, preprocessor, queryFiles.Select(q => q.Path).ToArray()).Select(Global).ToArray();
        var results = new List<object>();
        foreach (var set in sets)
        {
            var windows = RegionSets[set];
            // Every indexed image: its global vector, then one per window.
            var vectors = indexMaps.Select(map => new[] { Global(map) }.Concat(windows.Select(w => Pool(map, w))).ToArray()).ToArray();
            var perTransform = new SortedDictionary<string, (int N, int R1, int R10)>(StringComparer.Ordinal);
            for (var q = 0; q < queries.Length; q++)
            {
                var expected = Path.GetFileName(queryFiles[q].Path).Split("__")[0];
                var target = Array.IndexOf(indexIds, expected);
                var scores = vectors.Select(image => image.Max(v => TensorPrimitives.Dot<float>(queries[q], v))).ToArray();
                // Ties count against the query, as in RetrievalQuality.
                var rank = 1 + scores.Where((s, i) => i != target && s >= scores[target]).Count();
                var (n, r1, r10) = perTransform.GetValueOrDefault(queryFiles[q].Transform);
                perTransform[queryFiles[q].Transform] = (n + 1, r1 + (rank == 1 ? 1 : 0), r10 + (rank <= 10 ? 1 : 0));
            }

            var total = perTransform.Values.Aggregate((N: 0, R1: 0, R10: 0), (a, b) => (a.N + b.N, a.R1 + b.R1, a.R10 + b.R10));
            results.Add(new
            {
                regions = set,
                vectorsPerImage = 1 + windows.Length,
                recallAt1 = R(total.R1, total.N),
                recallAt10 = R(total.R10, total.N),
                perTransform = perTransform.ToDictionary(p => p.Key, p => R(p.Value.R1, p.Value.N)),
            });
        }

        return new { indexed = indexFiles.Length, queries = queryFiles.Length, results };
    }

    private static object Categories(InferenceSession session, ImagePreprocessor preprocessor, string root)
    {
        var files = Directory.GetFiles(Path.Combine(root, "pictures")).Order(StringComparer.Ordinal).ToArray();
        var labels = files.Select(f => Path.GetFileName(f).Split("__")[0]).ToArray();
        var maps = Maps(session, preprocessor, files);
        var power = maps.Select(Global).ToArray();
        var plain = maps.Select(m => Global(m, powerNormalize: false)).ToArray();
        // The colour probe covers the pictures that have colours to turn (make_categories.py writes only those).
        var rotatedFiles = files.Select(f => Path.Combine(root, "rotated", Path.GetFileName(f))).ToArray();
        var probed = rotatedFiles.Select(File.Exists).ToArray();
        var rotatedMaps = Maps(session, preprocessor, rotatedFiles.Where(File.Exists).ToArray());
        float[]?[] Spread(Func<float[], float[]> finish)
        {
            var vectors = new float[]?[files.Length];
            var next = 0;
            for (var i = 0; i < files.Length; i++)
            {
                vectors[i] = probed[i] ? finish(rotatedMaps[next++]) : null;
            }

            return vectors;
        }

        return new
        {
            pictures = files.Length,
            categories = labels.Distinct().Count(),
            colourProbePictures = probed.Count(p => p),
            powerAndL2 = Retrieval(power, labels, Spread(Global)),
            l2Only = Retrieval(plain, labels, Spread(m => Global(m, powerNormalize: false))),
        };
    }

    /// <summary>Leave-one-out category retrieval, and the colour probe.</summary>
    private static object Retrieval(float[][] vectors, string[] labels, float[]?[] rotated)
    {
        var probed = 0;
        double ap = 0, p1 = 0, p10 = 0;
        var rotatedNearest = 0;
        var rotatedCosine = 0.0;
        for (var q = 0; q < vectors.Length; q++)
        {
            var order = Enumerable.Range(0, vectors.Length).Where(i => i != q)
                .Select(i => (I: i, S: TensorPrimitives.Dot<float>(vectors[q], vectors[i])))
                .OrderByDescending(x => x.S).ThenBy(x => x.I).ToArray();
            var relevant = order.Count(x => labels[x.I] == labels[q]);
            var hits = 0;
            var sum = 0.0;
            for (var k = 0; k < order.Length; k++)
            {
                if (labels[order[k].I] == labels[q])
                {
                    hits++;
                    sum += hits / (double)(k + 1);
                }

                if (k == 0)
                {
                    p1 += hits;
                }

                if (k == 9)
                {
                    p10 += hits / 10.0;
                }
            }

            ap += relevant > 0 ? sum / relevant : 0;
            if (rotated[q] is { } turned)
            {
                var copy = TensorPrimitives.Dot<float>(vectors[q], turned);
                probed++;
                rotatedCosine += copy;
                rotatedNearest += copy > order[0].S ? 1 : 0;
            }
        }

        var n = (double)vectors.Length;
        return new
        {
            mAP = Math.Round(ap / n, 4),
            pAt1 = Math.Round(p1 / n, 4),
            pAt10 = Math.Round(p10 / n, 4),
            rotatedCopyNearest = Math.Round(rotatedNearest / (double)probed, 4),
            rotatedCopyMeanCosine = Math.Round(rotatedCosine / probed, 4),
        };
    }

    private static double R(int hits, int n) => Math.Round(hits / (double)n, 4);

    /// <summary>The 7x7x1280 map of every file (channel-major, as the model gives it).</summary>
    private static float[][] Maps(InferenceSession session, ImagePreprocessor preprocessor, string[] files)
    {
        var maps = new float[files.Length][];
        const int Batch = 8;
        var length = preprocessor.TensorLength;
        for (var start = 0; start < files.Length; start += Batch)
        {
            var count = Math.Min(Batch, files.Length - start);
            var input = new float[count * length];
            var first = start;
            Parallel.For(0, count, i =>
            {
                if (preprocessor.Preprocess(File.ReadAllBytes(files[first + i]), input.AsSpan(i * length, length)).IsRejected)
                {
                    throw new InvalidOperationException($"cannot decode {files[first + i]}");
                }
            });
            using var value = OrtValue.CreateTensorValueFromMemory(input, [count, Side, Side, 3]);
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, ["images"], [value], ["out_relu"]);
            var flat = outputs[0].GetTensorDataAsSpan<float>();
            var per = flat.Length / count;
            for (var i = 0; i < count; i++)
            {
                maps[start + i] = flat.Slice(i * per, per).ToArray();
            }
        }

        return maps;
    }

    private static float[] Global(float[] map) => Global(map, powerNormalize: true);

    private static float[] Global(float[] map, bool powerNormalize) => Finish(Average(map, (0, 0, Map, Map)), powerNormalize);

    private static float[] Pool(float[] map, (int Y, int X, int H, int W) window) => Finish(Average(map, window), powerNormalize: true);

    private static float[] Average(float[] map, (int Y, int X, int H, int W) w)
    {
        var channels = map.Length / (Map * Map);
        var vector = new float[channels];
        for (var c = 0; c < channels; c++)
        {
            var sum = 0f;
            for (var y = w.Y; y < w.Y + w.H; y++)
            {
                for (var x = w.X; x < w.X + w.W; x++)
                {
                    sum += map[(c * Map * Map) + (y * Map) + x];
                }
            }

            vector[c] = sum / (w.H * w.W);
        }

        return vector;
    }

    private static float[] Finish(float[] vector, bool powerNormalize)
    {
        if (powerNormalize)
        {
            for (var i = 0; i < vector.Length; i++)
            {
                vector[i] = MathF.Sqrt(MathF.Max(0, vector[i]));
            }
        }

        var norm = TensorPrimitives.Norm<float>(vector);
        if (norm > 0)
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }

        return vector;
    }
}
