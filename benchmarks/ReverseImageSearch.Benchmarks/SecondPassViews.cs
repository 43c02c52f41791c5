using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using ReverseImageSearch.Embedding;
using SkiaSharp;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// Region vectors from a SECOND PASS (issue 12, item 2), and the power-normalisation exponent (item 5): every indexed
/// picture is embedded as the product embeds it (upright centre square) plus extra views, each a separate inference on
/// a part of the whole picture, including the parts the centre square misses in wide pictures:
///   end squares   the two squares at the ends of the long side (a wide picture's left and right, a tall one's top and bottom);
///                 "ends" draws them for every picture, "ends@A" only when the long side is more than A x the short side
///                 (the product's rule is ends@1.25: a near-square picture's end squares are almost its centre square);
///   squash / pad  the whole picture squashed to a square, or fitted inside one with black bars;
///   winN@S        N x N windows of S of the picture's width and height spread over it, each seen as its centre square
///                 (what the model sees of a crop of that window);
///   zoom@S        the centre square at S of its side;
///   mean:SET      the views of SET averaged into the one stored vector (more inferences, one vector);
///   product       the views the product stores with MATCH_CROPS=true, drawn by the product's own code
///                 (<see cref="ImagePreprocessor.PreprocessWithViews"/>: start and end squares when the long side is
///                 more than 1.25x the short, the centre square at 70%), the image's own vector from that same decode;
///   product-views the same views beside the image's own vector as embedded without views (the query's path).
/// An indexed picture scores its best vector (the answer's dedup per image); queries use the product's single vector.
/// Sets of views (--sets, names joined by '+') are scored on the copy-detection set (recall@1 per transform) and, with
/// --categories, on the category set and colour probe of <see cref="ColourAndRegions"/> (stored views there too), for
/// both MATCH_COLOR settings and every exponent of --exponents (0.5 is the product's square root; 1 is L2 only).
/// --shortlist (sizes K joined by ',', "all" = every image) scores as the local index answers with stored views: the
/// images are ranked by their own (global) vector, the K first are rescored with the best of all their vectors and
/// the answer comes from them only; "all" is the best of all vectors per image (Vertex AI's crowding, Firestore).
/// --distractors (folders joined by ',') adds their pictures, with their views, to the copy-detection index.
/// </summary>
internal static class SecondPassViews
{
    private const int Side = 224;

    // "mean:SET": the views of SET averaged into the one stored vector instead of stored beside it.
    private const string MeanPrefix = "mean:";

    // The view set the product stores (MATCH_CROPS=true), drawn by ImagePreprocessor.PreprocessWithViews.
    private const string ProductViews = "product";

    // The product's views beside the image's own vector from ImagePreprocessor.Preprocess (as a query is embedded).
    private const string ProductViewsOnly = "product-views";

    // --shortlist value for "every image": the best of all vectors per image.
    private const string All = "all";

    private static readonly string[] DefaultSets =
    [
        "none", "ends", "squash", "pad", "zoom@0.7", "win2@0.6", "win2@0.7", "win3@0.6", "ends+win2@0.7", "ends+zoom@0.7",
        "ends+squash", "ends+win2@0.6", "win2@0.7+zoom@0.7",
    ];

    public static Task<int> RunAsync(Cli cli)
    {
        var model = cli.Get("model", EmbeddingBenchmarks.ModelPath());
        var dataset = cli.Get("dataset", "");
        var categories = cli.Get("categories", "");
        var distractors = cli.Get("distractors", "").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var sets = cli.Get("sets", string.Join(',', DefaultSets)).Split(',');
        var exponents = cli.Get("exponents", "0.5").Split(',').Select(e => float.Parse(e, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var modes = cli.Get("modes", "luma,colour").Split(',');
        var shortlists = cli.Get("shortlist", All).Split(',').Select(k => k == All ? int.MaxValue : int.Parse(k, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var views = sets.SelectMany(s => s.Replace(MeanPrefix, "", StringComparison.Ordinal).Split('+')).Where(v => v != "none").Distinct(StringComparer.Ordinal).ToArray();
        using var session = new InferenceSession(model, new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var report = new List<object>();
        foreach (var mode in modes)
        {
            var grayscale = mode == "luma";
            var embedder = new ViewEmbedder(session, new ImagePreprocessor(Side, Side, 50_000_000, grayscale), grayscale);
            object? copies = dataset.Length > 0 ? CopyDetection(embedder, dataset, distractors, views, sets, exponents, shortlists) : null;
            object? cats = categories.Length > 0 ? Categories(embedder, categories, views, sets, exponents, shortlists) : null;
            report.Add(new { mode = grayscale ? "MATCH_COLOR=false (luma)" : "MATCH_COLOR=true (colour)", copyDetection = copies, categories = cats });
        }

        cli.Emit(new { model, dataset, distractors, categories, seconds = Math.Round(clock.Elapsed.TotalSeconds, 1), modes = report });
        return Task.FromResult(0);
    }

    /// <summary>One picture: the raw (not yet normalised) model output of its product view and of each extra view.</summary>
    private sealed record Stored(float[] Global, Dictionary<string, float[][]> Views);

    private static object CopyDetection(ViewEmbedder embedder, string dataset, string[] distractors, string[] views, string[] sets, float[] exponents, int[] shortlists)
    {
        var indexFiles = Directory.GetFiles(Path.Combine(dataset, "index")).Order(StringComparer.Ordinal).ToArray();
        var queryFiles = Directory.GetDirectories(Path.Combine(dataset, "queries"))
            .SelectMany(dir => Directory.GetFiles(dir).Select(f => (Transform: Path.GetFileName(dir), Path: f)))
            .OrderBy(q => q.Path, StringComparer.Ordinal).ToArray();
        var indexIds = indexFiles.Select(Path.GetFileNameWithoutExtension).ToArray();
        // Distractors come after the set's pictures, so no query names one as its original.
        var stored = embedder.Embed([.. indexFiles, .. ImageFolders.Files(distractors)], views);
        var queries = embedder.Embed(queryFiles.Select(q => q.Path).ToArray(), []).Select(s => s.Global).ToArray();
        var targets = queryFiles.Select(q => Array.IndexOf(indexIds, Path.GetFileName(q.Path).Split("__")[0])).ToArray();
        var transforms = queryFiles.Select(q => q.Transform).ToArray();
        var results = new List<object>();
        var globalRanks = new List<object>();
        foreach (var exponent in exponents)
        {
            var finishedQueries = queries.Select(q => Finish(q, exponent)).ToArray();
            int[]? byGlobal = null;
            foreach (var set in sets)
            {
                var vectors = stored.Select(s => Vectors(s, set, exponent)).ToArray();
                // ranks[k][q]: the rank of query q's original in the answer with shortlist shortlists[k].
                var ranks = shortlists.Select(_ => new int[queries.Length]).ToArray();
                var globalRank = new int[queries.Length];
                Parallel.For(0, queries.Length, q =>
                {
                    var (global, best) = Scores(finishedQueries[q], vectors);
                    globalRank[q] = Rank(global, targets[q]);
                    for (var k = 0; k < shortlists.Length; k++)
                    {
                        ranks[k][q] = Rank(Shortlisted(global, best, shortlists[k]), targets[q]);
                    }
                });
                byGlobal ??= globalRank;
                for (var k = 0; k < shortlists.Length; k++)
                {
                    var rank = ranks[k];
                    results.Add(new
                    {
                        exponent,
                        views = set,
                        shortlist = Label(shortlists[k]),
                        vectorsPerImage = Math.Round(vectors.Average(v => v.Length), 2),
                        inferencesPerImage = Math.Round(stored.Average(s => Vectors(s, set.Replace(MeanPrefix, "", StringComparison.Ordinal), exponent).Length), 2),
                        recallAt1 = R(rank.Count(r => r == 1), rank.Length),
                        recallAt10 = R(rank.Count(r => r <= 10), rank.Length),
                        perTransform = PerTransform(transforms, q => rank[q] == 1, _ => true),
                        // The largest rank by the global vector alone among the queries this answer finds first: the
                        // shortlist these queries need (ties with the rest of the index aside).
                        globalRankOfFoundFirst = PerTransform(transforms, q => globalRank[q], q => rank[q] == 1),
                    });
                }
            }

            // The rank of each query's original by the global vector alone (the views do not change it), per transform.
            globalRanks.Add(new
            {
                exponent,
                perTransform = Enumerable.Range(0, queries.Length).GroupBy(q => transforms[q], StringComparer.Ordinal)
                    .OrderBy(g => g.Key, StringComparer.Ordinal)
                    .ToDictionary(
                        g => g.Key,
                        g => new
                        {
                            max = g.Max(q => byGlobal![q]),
                            histogram = g.GroupBy(q => byGlobal![q]).OrderBy(r => r.Key).ToDictionary(r => r.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), r => r.Count(), StringComparer.Ordinal),
                        },
                        StringComparer.Ordinal),
            });
        }

        // How far the image's own vector drawn with the product's views is from the one drawn without them.
        var ownCosines = stored.Where(s => s.Views.ContainsKey(ProductViews))
            .Select(s => TensorPrimitives.Dot<float>(Finish(s.Global, 0.5f), Finish(s.Views[ProductViews][0], 0.5f))).ToArray();
        var productOwnVsGlobal = ownCosines.Length == 0 ? null : new { min = Math.Round(ownCosines.Min(), 4), mean = Math.Round(ownCosines.Average(), 4), below0999 = ownCosines.Count(c => c < 0.999f) };
        return new { indexed = stored.Length, distractors = stored.Length - indexFiles.Length, productOwnVsGlobal, queries = queryFiles.Length, results, globalRanks };
    }

    /// <summary>Per transform: the share of queries meeting <paramref name="hit"/>, or (with an int) the largest value among the selected queries.</summary>
    private static Dictionary<string, double> PerTransform(string[] transforms, Func<int, bool> hit, Func<int, bool> selected) =>
        Enumerable.Range(0, transforms.Length).Where(selected).GroupBy(q => transforms[q], StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => R(g.Count(hit), g.Count()), StringComparer.Ordinal);

    private static Dictionary<string, int> PerTransform(string[] transforms, Func<int, int> value, Func<int, bool> selected) =>
        Enumerable.Range(0, transforms.Length).Where(selected).GroupBy(q => transforms[q], StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Max(value), StringComparer.Ordinal);

    private static string Label(int shortlist) => shortlist == int.MaxValue ? All : shortlist.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Per stored image: the cosine of its global vector (always first) and the best cosine of all its vectors.</summary>
    private static (float[] Global, float[] Best) Scores(float[] query, float[][][] images)
    {
        var global = new float[images.Length];
        var best = new float[images.Length];
        for (var i = 0; i < images.Length; i++)
        {
            global[i] = TensorPrimitives.Dot<float>(query, images[i][0]);
            best[i] = images[i].Max(v => TensorPrimitives.Dot<float>(query, v));
        }

        return (global, best);
    }

    /// <summary>
    /// The scores that order the answer of a local index with a shortlist of <paramref name="size"/>: the images with
    /// the best global cosines (ties to the lower index) score the best of their vectors, lifted above all others,
    /// which keep their global cosine (they only ever come after the shortlist: the product's answer is cut there).
    /// </summary>
    private static float[] Shortlisted(float[] global, float[] best, int size)
    {
        if (size >= global.Length)
        {
            return best;
        }

        // Cosines lie in [-1, 1]: +4 puts every shortlisted image before every other.
        var scores = (float[])global.Clone();
        foreach (var i in Enumerable.Range(0, global.Length).OrderByDescending(i => global[i]).ThenBy(i => i).Take(size))
        {
            scores[i] = best[i] + 4;
        }

        return scores;
    }

    /// <summary>1 + the images other than <paramref name="target"/> scoring at least as well (ties count against the query, as in RetrievalQuality).</summary>
    private static int Rank(float[] scores, int target) => 1 + scores.Where((s, i) => i != target && s >= scores[target]).Count();

    private static object Categories(ViewEmbedder embedder, string root, string[] views, string[] sets, float[] exponents, int[] shortlists)
    {
        var files = Directory.GetFiles(Path.Combine(root, "pictures")).Order(StringComparer.Ordinal).ToArray();
        var labels = files.Select(f => Path.GetFileName(f).Split("__")[0]).ToArray();
        var rotatedFiles = files.Select(f => Path.Combine(root, "rotated", Path.GetFileName(f))).Where(File.Exists).ToArray();
        var rotatedOf = files.Select(f => Array.IndexOf(rotatedFiles, Path.Combine(root, "rotated", Path.GetFileName(f)))).ToArray();
        var stored = embedder.Embed(files, views);
        var rotated = embedder.Embed(rotatedFiles, views);
        var results = new List<object>();
        foreach (var exponent in exponents)
        {
            foreach (var set in sets)
            {
                var vectors = stored.Select(s => Vectors(s, set, exponent)).ToArray();
                var turned = rotated.Select(s => Vectors(s, set, exponent)).ToArray();
                var queries = stored.Select(s => Finish(s.Global, exponent)).ToArray();
                var perQuery = new (double Ap, double P1, double P10, int Probed, int Nearest, double Cosine)[shortlists.Length, files.Length];
                Parallel.For(0, files.Length, q =>
                {
                    var (global, best) = Scores(queries[q], vectors);
                    // The query itself is not in its answer (leave-one-out): it scores below everything.
                    global[q] = best[q] = float.NegativeInfinity;
                    var probed = rotatedOf[q] >= 0;
                    // The turned copy is stored like any picture: it competes with its best vector, and it enters the
                    // shortlist only by its global vector.
                    var copy = probed ? Scores(queries[q], [turned[rotatedOf[q]]]) : ([float.NegativeInfinity], [float.NegativeInfinity]);
                    var withCopyGlobal = global.Append(copy.Global[0]).ToArray();
                    var withCopyBest = best.Append(copy.Best[0]).ToArray();
                    for (var k = 0; k < shortlists.Length; k++)
                    {
                        var scores = Shortlisted(global, best, shortlists[k]);
                        var order = Enumerable.Range(0, files.Length).Where(i => i != q).OrderByDescending(i => scores[i]).ThenBy(i => i).ToArray();
                        var relevant = order.Count(i => labels[i] == labels[q]);
                        var hits = 0;
                        var sum = 0.0;
                        double first = 0, tenth = 0;
                        for (var n = 0; n < order.Length; n++)
                        {
                            if (labels[order[n]] == labels[q])
                            {
                                hits++;
                                sum += hits / (double)(n + 1);
                            }

                            first = n == 0 ? hits : first;
                            tenth = n == 9 ? hits / 10.0 : tenth;
                        }

                        var ap = relevant > 0 ? sum / relevant : 0;
                        perQuery[k, q] = (ap, first, tenth, 0, 0, 0.0);
                        if (probed)
                        {
                            // Nearest: the copy ranks first among all other stamps and itself, shortlisted the same way.
                            var nearest = Rank(Shortlisted(withCopyGlobal, withCopyBest, shortlists[k]), files.Length) == 1;
                            perQuery[k, q] = (ap, first, tenth, 1, nearest ? 1 : 0, copy.Best[0]);
                        }
                    }
                });
                for (var k = 0; k < shortlists.Length; k++)
                {
                    double ap = 0, p1 = 0, p10 = 0, cosine = 0;
                    var nearest = 0;
                    var probed = 0;
                    for (var q = 0; q < files.Length; q++)
                    {
                        var r = perQuery[k, q];
                        ap += r.Ap;
                        p1 += r.P1;
                        p10 += r.P10;
                        probed += r.Probed;
                        nearest += r.Nearest;
                        cosine += r.Cosine;
                    }

                    results.Add(new
                    {
                        exponent,
                        views = set,
                        shortlist = Label(shortlists[k]),
                        vectorsPerImage = Math.Round(vectors.Average(v => v.Length), 2),
                        mAP = Math.Round(ap / files.Length, 4),
                        pAt1 = Math.Round(p1 / files.Length, 4),
                        pAt10 = Math.Round(p10 / files.Length, 4),
                        rotatedCopyNearest = R(nearest, probed),
                        rotatedCopyMeanBestCosine = Math.Round(cosine / probed, 4),
                    });
                }
            }
        }

        return new { pictures = files.Length, categories = labels.Distinct(StringComparer.Ordinal).Count(), colourProbePictures = rotatedFiles.Length, results };
    }

    private static float[][] Vectors(Stored stored, string set, float exponent)
    {
        if (set.StartsWith(MeanPrefix, StringComparison.Ordinal))
        {
            // One stored vector: the mean of the finished vectors of the product's view and the extra views.
            var parts = Vectors(stored, set[MeanPrefix.Length..], exponent);
            var mean = new float[parts[0].Length];
            foreach (var part in parts)
            {
                TensorPrimitives.Add(mean, part, mean);
            }

            return [Finish(mean, 1)];
        }

        // With the product's views the image's own vector is the one the product stores with them (first of the set).
        var names = set == "none" ? [] : set.Split('+');
        var own = names.Contains(ProductViews) ? stored.Views[ProductViews][0] : stored.Global;
        var vectors = new List<float[]> { Finish(own, exponent) };
        // A view a picture does not have (ends@A of a near-square picture) adds nothing.
        vectors.AddRange(names.SelectMany(v => v is ProductViews or ProductViewsOnly ? stored.Views[ProductViews].Skip(1) : stored.Views.GetValueOrDefault(v, []))
            .Select(v => Finish(v, exponent)));

        return [.. vectors];
    }

    private static double R(int hits, int n) => Math.Round(hits / (double)n, 4);

    /// <summary>Power normalisation with <paramref name="exponent"/> (0.5: the product's square root), then unit length.</summary>
    private static float[] Finish(float[] raw, float exponent)
    {
        var vector = new float[raw.Length];
        for (var i = 0; i < raw.Length; i++)
        {
            vector[i] = exponent == 1 ? MathF.Max(0, raw[i]) : MathF.Pow(MathF.Max(0, raw[i]), exponent);
        }

        var norm = TensorPrimitives.Norm<float>(vector);
        if (norm > 0)
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }

        return vector;
    }

    /// <summary>
    /// The source rectangles of a named view in a picture of <paramref name="width"/> x <paramref name="height"/>
    /// pixels; a rectangle that is not square is drawn squashed (only "squash" asks for that).
    /// </summary>
    private static SKRect[] Windows(string view, float width, float height)
    {
        var shortSide = Math.Min(width, height);
        SKRect SquareAt(float cx, float cy, float side)
        {
            var x = Math.Clamp(cx - (side / 2), 0, width - side);
            var y = Math.Clamp(cy - (side / 2), 0, height - side);
            return SKRect.Create(x, y, side, side);
        }

        if (view == "ends" || view.StartsWith("ends@", StringComparison.Ordinal))
        {
            var aspect = view == "ends" ? 0 : float.Parse(view[5..], System.Globalization.CultureInfo.InvariantCulture);
            if (Math.Max(width, height) <= aspect * shortSide)
            {
                return [];
            }

            return width >= height
                ? [SKRect.Create(0, 0, shortSide, shortSide), SKRect.Create(width - shortSide, 0, shortSide, shortSide)]
                : [SKRect.Create(0, 0, shortSide, shortSide), SKRect.Create(0, height - shortSide, shortSide, shortSide)];
        }

        if (view is "squash" or "pad")
        {
            return [SKRect.Create(0, 0, width, height)];
        }

        var at = view.IndexOf('@', StringComparison.Ordinal);
        var scale = float.Parse(view[(at + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        if (view.StartsWith("zoom", StringComparison.Ordinal))
        {
            return [SquareAt(width / 2, height / 2, scale * shortSide)];
        }

        if (view.StartsWith("win", StringComparison.Ordinal))
        {
            // N x N windows of scale x the width and height, from one edge to the other; each seen as its centre square.
            var n = int.Parse(view[3..at], System.Globalization.CultureInfo.InvariantCulture);
            var windows = new List<SKRect>();
            for (var j = 0; j < n; j++)
            {
                for (var i = 0; i < n; i++)
                {
                    var cx = ((scale / 2) + (i * (1 - scale) / Math.Max(1, n - 1))) * width;
                    var cy = ((scale / 2) + (j * (1 - scale) / Math.Max(1, n - 1))) * height;
                    windows.Add(SquareAt(cx, cy, scale * shortSide));
                }
            }

            return [.. windows];
        }

        throw new ArgumentException($"unknown view '{view}'");
    }

    /// <summary>Runs the model on the product's view and on the extra views of each file.</summary>
    private sealed class ViewEmbedder(InferenceSession session, ImagePreprocessor preprocessor, bool grayscale)
    {
        private const int Batch = 16;

        public Stored[] Embed(string[] files, string[] views)
        {
            var result = new Stored[files.Length];
            var pending = new List<(int File, string? View, float[] Tensor)>();
            var outputs = new List<(int File, string? View, float[] Raw)>();
            void Flush()
            {
                var raw = Run(pending.Select(p => p.Tensor).ToArray());
                outputs.AddRange(pending.Select((p, i) => (p.File, p.View, raw[i])));
                pending.Clear();
            }

            for (var f = 0; f < files.Length; f++)
            {
                var bytes = File.ReadAllBytes(files[f]);
                var tensor = new float[preprocessor.TensorLength];
                if (preprocessor.Preprocess(bytes, tensor).IsRejected)
                {
                    throw new InvalidOperationException($"cannot decode {files[f]}");
                }

                pending.Add((f, null, tensor));
                if (views.Contains(ProductViews) || views.Contains(ProductViewsOnly))
                {
                    // The product's own tensor and views, from its decode (stored under "product", own tensor first).
                    var all = new float[ImagePreprocessor.MaxTensorsPerImage * preprocessor.TensorLength];
                    var drawn = preprocessor.PreprocessWithViews(bytes, all);
                    if (drawn.IsRejected)
                    {
                        throw new InvalidOperationException($"cannot decode {files[f]}");
                    }

                    for (var t = 0; t <= drawn.Views.Count; t++)
                    {
                        pending.Add((f, ProductViews, all.AsSpan(t * preprocessor.TensorLength, preprocessor.TensorLength).ToArray()));
                    }
                }

                var own = views.Where(v => v is not ProductViews and not ProductViewsOnly).ToArray();
                if (own.Length > 0)
                {
                    using var bitmap = Decode(bytes, files[f]);
                    foreach (var view in own)
                    {
                        foreach (var window in Windows(view, bitmap.Width, bitmap.Height))
                        {
                            pending.Add((f, view, Draw(bitmap, window, pad: view == "pad")));
                        }
                    }
                }

                if (pending.Count >= Batch)
                {
                    Flush();
                }
            }

            if (pending.Count > 0)
            {
                Flush();
            }

            foreach (var group in outputs.GroupBy(o => o.File))
            {
                result[group.Key] = new Stored(
                    group.Single(o => o.View is null).Raw,
                    group.Where(o => o.View is not null).GroupBy(o => o.View!, StringComparer.Ordinal)
                        .ToDictionary(g => g.Key, g => g.Select(o => o.Raw).ToArray(), StringComparer.Ordinal));
            }

            return result;
        }

        private static SKBitmap Decode(byte[] bytes, string file)
        {
            using var codec = SKCodec.Create(new MemoryStream(bytes)) ?? throw new InvalidOperationException($"cannot decode {file}");
            var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
            var bitmap = new SKBitmap(info);
            // The sets are written without EXIF orientation, so the stored pixels are upright.
            if (codec.GetPixels(info, bitmap.GetPixels()) != SKCodecResult.Success)
            {
                throw new InvalidOperationException($"cannot decode {file}");
            }

            return bitmap;
        }

        /// <summary>The rectangle drawn onto the 224x224 input (mipmapped when shrinking by more than 2x, as the product).</summary>
        private float[] Draw(SKBitmap decoded, SKRect window, bool pad)
        {
            using var source = new SKPixmap(decoded.Info.WithAlphaType(SKAlphaType.Opaque), decoded.GetPixels(), decoded.RowBytes);
            using var image = SKImage.FromPixels(source);
            var target = SKRect.Create(Side, Side);
            if (pad)
            {
                var fit = Side / Math.Max(window.Width, window.Height);
                var w = window.Width * fit;
                var h = window.Height * fit;
                target = SKRect.Create((Side - w) / 2, (Side - h) / 2, w, h);
            }

            var minification = Math.Min(window.Width / target.Width, window.Height / target.Height);
            var sampling = minification > 2
                ? new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear)
                : new SKSamplingOptions(SKFilterMode.Linear);
            using var bitmap = new SKBitmap(new SKImageInfo(Side, Side, SKColorType.Rgba8888, SKAlphaType.Opaque));
            using (var canvas = new SKCanvas(bitmap))
            {
                canvas.Clear(SKColors.Black);
                canvas.DrawImage(image, window, target, sampling, null);
            }

            var pixels = bitmap.GetPixelSpan();
            var tensor = new float[Side * Side * 3];
            for (var i = 0; i < Side * Side; i++)
            {
                float r = pixels[i * 4] / 255f, g = pixels[(i * 4) + 1] / 255f, b = pixels[(i * 4) + 2] / 255f;
                if (grayscale)
                {
                    r = g = b = (0.299f * r) + (0.587f * g) + (0.114f * b);
                }

                tensor[i * 3] = r;
                tensor[(i * 3) + 1] = g;
                tensor[(i * 3) + 2] = b;
            }

            return tensor;
        }

        private float[][] Run(float[][] tensors) => RetrievalQuality.Run(session, tensors);
    }
}
