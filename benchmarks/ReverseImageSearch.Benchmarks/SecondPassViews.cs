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
///   squash / pad  the whole picture squashed to a square, or fitted inside one with black bars;
///   winN@S        N x N windows of S of the picture's width and height spread over it, each seen as its centre square
///                 (what the model sees of a crop of that window);
///   zoom@S        the centre square at S of its side;
///   mean:SET      the views of SET averaged into the one stored vector (more inferences, one vector).
/// An indexed picture scores its best vector (the answer's dedup per image); queries use the product's single vector.
/// Sets of views (--sets, names joined by '+') are scored on the copy-detection set (recall@1 per transform) and, with
/// --categories, on the category set and colour probe of <see cref="ColourAndRegions"/> (stored views there too), for
/// both MATCH_COLOR settings and every exponent of --exponents (0.5 is the product's square root; 1 is L2 only).
/// </summary>
internal static class SecondPassViews
{
    private const int Side = 224;

    // "mean:SET": the views of SET averaged into the one stored vector instead of stored beside it.
    private const string MeanPrefix = "mean:";

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
        var sets = cli.Get("sets", string.Join(',', DefaultSets)).Split(',');
        var exponents = cli.Get("exponents", "0.5").Split(',').Select(e => float.Parse(e, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var modes = cli.Get("modes", "luma,colour").Split(',');
        var views = sets.SelectMany(s => s.Replace(MeanPrefix, "", StringComparison.Ordinal).Split('+')).Where(v => v != "none").Distinct(StringComparer.Ordinal).ToArray();
        using var session = new InferenceSession(model, new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var report = new List<object>();
        foreach (var mode in modes)
        {
            var grayscale = mode == "luma";
            var embedder = new ViewEmbedder(session, new ImagePreprocessor(Side, Side, 50_000_000, grayscale), grayscale);
            object? copies = dataset.Length > 0 ? CopyDetection(embedder, dataset, views, sets, exponents) : null;
            object? cats = categories.Length > 0 ? Categories(embedder, categories, views, sets, exponents) : null;
            report.Add(new { mode = grayscale ? "MATCH_COLOR=false (luma)" : "MATCH_COLOR=true (colour)", copyDetection = copies, categories = cats });
        }

        cli.Emit(new { model, dataset, categories, seconds = Math.Round(clock.Elapsed.TotalSeconds, 1), modes = report });
        return Task.FromResult(0);
    }

    /// <summary>One picture: the raw (not yet normalised) model output of its product view and of each extra view.</summary>
    private sealed record Stored(float[] Global, Dictionary<string, float[][]> Views);

    private static object CopyDetection(ViewEmbedder embedder, string dataset, string[] views, string[] sets, float[] exponents)
    {
        var indexFiles = Directory.GetFiles(Path.Combine(dataset, "index")).Order(StringComparer.Ordinal).ToArray();
        var queryFiles = Directory.GetDirectories(Path.Combine(dataset, "queries"))
            .SelectMany(dir => Directory.GetFiles(dir).Select(f => (Transform: Path.GetFileName(dir), Path: f)))
            .OrderBy(q => q.Path, StringComparer.Ordinal).ToArray();
        var indexIds = indexFiles.Select(Path.GetFileNameWithoutExtension).ToArray();
        var stored = embedder.Embed(indexFiles, views);
        var queries = embedder.Embed(queryFiles.Select(q => q.Path).ToArray(), []).Select(s => s.Global).ToArray();
        var targets = queryFiles.Select(q => Array.IndexOf(indexIds, Path.GetFileName(q.Path).Split("__")[0])).ToArray();
        var results = new List<object>();
        foreach (var exponent in exponents)
        {
            var finishedQueries = queries.Select(q => Finish(q, exponent)).ToArray();
            foreach (var set in sets)
            {
                var vectors = stored.Select(s => Vectors(s, set, exponent)).ToArray();
                var ranks = new int[queries.Length];
                Parallel.For(0, queries.Length, q =>
                {
                    var scores = vectors.Select(image => image.Max(v => TensorPrimitives.Dot<float>(finishedQueries[q], v))).ToArray();
                    // Ties count against the query, as in RetrievalQuality.
                    ranks[q] = 1 + scores.Where((s, i) => i != targets[q] && s >= scores[targets[q]]).Count();
                });
                var perTransform = queryFiles.Select((f, q) => (f.Transform, Rank: ranks[q])).GroupBy(x => x.Transform, StringComparer.Ordinal)
                    .OrderBy(g => g.Key, StringComparer.Ordinal)
                    .ToDictionary(g => g.Key, g => R(g.Count(x => x.Rank == 1), g.Count()), StringComparer.Ordinal);
                results.Add(new
                {
                    exponent,
                    views = set,
                    vectorsPerImage = Math.Round(vectors.Average(v => v.Length), 2),
                    inferencesPerImage = 1 + ViewCount(set),
                    recallAt1 = R(ranks.Count(r => r == 1), ranks.Length),
                    recallAt10 = R(ranks.Count(r => r <= 10), ranks.Length),
                    perTransform,
                });
            }
        }

        return new { indexed = indexFiles.Length, queries = queryFiles.Length, results };
    }

    private static object Categories(ViewEmbedder embedder, string root, string[] views, string[] sets, float[] exponents)
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
                double ap = 0, p1 = 0, p10 = 0, cosine = 0;
                var nearest = 0;
                var probed = 0;
                var perQuery = new (double Ap, double P1, double P10, int Probed, int Nearest, double Cosine)[files.Length];
                Parallel.For(0, files.Length, q =>
                {
                    var order = Enumerable.Range(0, files.Length).Where(i => i != q)
                        .Select(i => (I: i, S: vectors[i].Max(v => TensorPrimitives.Dot<float>(queries[q], v))))
                        .OrderByDescending(x => x.S).ThenBy(x => x.I).ToArray();
                    var relevant = order.Count(x => labels[x.I] == labels[q]);
                    var hits = 0;
                    var sum = 0.0;
                    double first = 0, tenth = 0;
                    for (var k = 0; k < order.Length; k++)
                    {
                        if (labels[order[k].I] == labels[q])
                        {
                            hits++;
                            sum += hits / (double)(k + 1);
                        }

                        first = k == 0 ? hits : first;
                        tenth = k == 9 ? hits / 10.0 : tenth;
                    }

                    var result = (relevant > 0 ? sum / relevant : 0, first, tenth, 0, 0, 0.0);
                    if (rotatedOf[q] >= 0)
                    {
                        // The turned copy is stored like any picture: it competes with its best vector.
                        var copy = turned[rotatedOf[q]].Max(v => TensorPrimitives.Dot<float>(queries[q], v));
                        result = (result.Item1, first, tenth, 1, copy > order[0].S ? 1 : 0, copy);
                    }

                    perQuery[q] = result;
                });
                foreach (var r in perQuery)
                {
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
                    mAP = Math.Round(ap / files.Length, 4),
                    pAt1 = Math.Round(p1 / files.Length, 4),
                    pAt10 = Math.Round(p10 / files.Length, 4),
                    rotatedCopyNearest = R(nearest, probed),
                    rotatedCopyMeanBestCosine = Math.Round(cosine / probed, 4),
                });
            }
        }

        return new { pictures = files.Length, categories = labels.Distinct(StringComparer.Ordinal).Count(), colourProbePictures = rotatedFiles.Length, results };
    }

    private static int ViewCount(string set) =>
        set == "none" ? 0 : set.Replace(MeanPrefix, "", StringComparison.Ordinal).Split('+').Sum(v => Windows(v, 4, 3).Length);

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

        var vectors = new List<float[]> { Finish(stored.Global, exponent) };
        if (set != "none")
        {
            vectors.AddRange(set.Split('+').SelectMany(v => stored.Views[v]).Select(v => Finish(v, exponent)));
        }

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

        if (view == "ends")
        {
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
                if (views.Length > 0)
                {
                    using var bitmap = Decode(bytes, files[f]);
                    foreach (var view in views)
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
