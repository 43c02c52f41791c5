using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using ReverseImageSearch.Embedding;
using SkiaSharp;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// Copy-detection quality: the images of DATASET/index (originals and distractors) are indexed, every image of
/// DATASET/queries/TRANSFORM/ is a transformed copy of the original named by its file stem before "__", and each
/// query should find that original first. Reports recall@1, recall@10 and mAP (one relevant item: mean of
/// 1/rank; ties ranked against the query) per transform and overall, for several ways to embed:
///   original        - the original extension: full decode, centre crop, bilinear resize, /255, raw vector, dot product;
///   original+l2     - the same with unit vectors;
///   port-colour     - this port's preprocessing (reduced-scale decode, EXIF, mipmapped resize) on colour input, L2;
///   default         - the product's embedder as it ships: luma input, power normalisation, L2;
///   default+mirror  - default averaged with the vector of the mirrored copy (<see cref="Mirroring"/>: a second inference);
///   default+centred - default vectors centred on the mean of the indexed ones and renormalised.
/// </summary>
internal static class RetrievalQuality
{
    private const int Side = 224;
    private const int Length = Side * Side * 3;

    public static Task<int> RunAsync(Cli cli)
    {
        var dataset = cli.Require("dataset");
        var model = cli.Get("model", EmbeddingBenchmarks.ModelPath());
        var indexFiles = Directory.GetFiles(Path.Combine(dataset, "index")).Order(StringComparer.Ordinal).ToArray();
        var queryFiles = Directory.GetDirectories(Path.Combine(dataset, "queries"))
            .SelectMany(dir => Directory.GetFiles(dir).Select(f => (Transform: Path.GetFileName(dir), Path: f)))
            .OrderBy(q => q.Path, StringComparer.Ordinal).ToArray();
        using var session = new InferenceSession(model, new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL });
        var preprocessor = new ImagePreprocessor(Side, Side, 50_000_000);
        var clock = Stopwatch.StartNew();

        var indexIds = indexFiles.Select(Path.GetFileNameWithoutExtension).ToArray();
        var queryPaths = queryFiles.Select(q => q.Path).ToArray();
        var variants = new Dictionary<string, (float[][] Index, float[][] Queries)>();
        var originalIndex = Embed(session, indexFiles, f => OriginalPreprocess(f));
        var originalQueries = Embed(session, queryPaths, f => OriginalPreprocess(f));
        variants["original"] = (originalIndex, originalQueries);
        variants["original+l2"] = (Normalize(originalIndex), Normalize(originalQueries));

        // The port with colour input and plain L2 normalisation: the default until luma input and power normalisation.
        var colourIndex = Embed(session, indexFiles, f => PortPreprocess(preprocessor, f));
        var colourQueries = Embed(session, queryPaths, f => PortPreprocess(preprocessor, f));
        variants["port-colour"] = (Normalize(colourIndex), Normalize(colourQueries));

        // What ships: the product's embedder with its default options; and each vector averaged with its mirror's.
        var defaultIndex = EmbedWithProduct(model, indexFiles, File.ReadAllBytes);
        var defaultQueries = EmbedWithProduct(model, queryPaths, File.ReadAllBytes);
        variants["default"] = (defaultIndex, defaultQueries);
        variants["default+mirror"] = (WithMirror(model, indexFiles, defaultIndex), WithMirror(model, queryPaths, defaultQueries));
        // Centring on the mean of the indexed vectors: would need the mean learned from the index first.
        variants["default+centred"] = Centre(variants["default"].Index, variants["default"].Queries);

        var report = new List<object>();
        foreach (var (name, (index, queries)) in variants)
        {
            var perTransform = new Dictionary<string, (int N, int R1, int R10, double Ap)>();
            for (var q = 0; q < queries.Length; q++)
            {
                var expected = Path.GetFileName(queryFiles[q].Path).Split("__")[0];
                var target = Array.IndexOf(indexIds, expected);
                if (target < 0)
                {
                    throw new InvalidOperationException($"query {queryFiles[q].Path} names no indexed original '{expected}'");
                }

                var targetScore = Dot(queries[q], index[target]);
                // Ties count against the query: an equally close other picture is not a hit.
                var rank = 1 + index.Where((v, i) => i != target && Dot(queries[q], v) >= targetScore).Count();
                var t = queryFiles[q].Transform;
                var (n, r1, r10, ap) = perTransform.GetValueOrDefault(t);
                perTransform[t] = (n + 1, r1 + (rank == 1 ? 1 : 0), r10 + (rank <= 10 ? 1 : 0), ap + (1.0 / rank));
            }

            var all = perTransform.Values.Aggregate((0, 0, 0, 0.0), (a, b) => (a.Item1 + b.N, a.Item2 + b.R1, a.Item3 + b.R10, a.Item4 + b.Ap));
            report.Add(new
            {
                variant = name,
                overall = new { queries = all.Item1, recallAt1 = R(all.Item2, all.Item1), recallAt10 = R(all.Item3, all.Item1), mAP = Math.Round(all.Item4 / all.Item1, 4) },
                transforms = perTransform.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => new
                {
                    transform = p.Key,
                    queries = p.Value.N,
                    recallAt1 = R(p.Value.R1, p.Value.N),
                    recallAt10 = R(p.Value.R10, p.Value.N),
                    mAP = Math.Round(p.Value.Ap / p.Value.N, 4),
                }).ToArray(),
            });
        }

        cli.Emit(new { dataset, indexed = indexFiles.Length, queries = queryFiles.Length, seconds = Math.Round(clock.Elapsed.TotalSeconds, 1), variants = report });
        return Task.FromResult(0);
    }

    private static float[][] WithMirror(string model, string[] files, float[][] vectors)
    {
        var mirrored = EmbedWithProduct(model, files, f => Mirroring.MirroredPng(File.ReadAllBytes(f)));
        return vectors.Select((v, i) => Mirroring.Average(v, mirrored[i])).ToArray();
    }

    private static float[][] EmbedWithProduct(string model, string[] files, Func<string, byte[]> read)
    {
        using var embedder = new OnnxImageEmbedder(
            new EmbedderOptions(model), Microsoft.Extensions.Logging.Abstractions.NullLogger<OnnxImageEmbedder>.Instance);
        var vectors = new float[files.Length][];
        for (var start = 0; start < files.Length; start += 16)
        {
            var batch = files.Skip(start).Take(16).Select(f => (ReadOnlyMemory<byte>)read(f)).ToArray();
            var results = embedder.EmbedAsync(batch).GetAwaiter().GetResult();
            for (var i = 0; i < results.Count; i++)
            {
                vectors[start + i] = results[i].Vector ?? throw new InvalidOperationException($"{files[start + i]}: {results[i].RejectionReason}");
            }
        }

        return vectors;
    }

    private static double R(int hits, int n) => Math.Round(hits / (double)n, 4);

    private static float Dot(float[] a, float[] b) => System.Numerics.Tensors.TensorPrimitives.Dot<float>(a, b);

    /// <summary>Raw model outputs of every file, preprocessed by <paramref name="preprocess"/>.</summary>
    private static float[][] Embed(InferenceSession session, string[] files, Func<string, float[]?> preprocess)
    {
        var results = new float[files.Length][];
        const int Batch = 16;
        for (var start = 0; start < files.Length; start += Batch)
        {
            var count = Math.Min(Batch, files.Length - start);
            var tensors = new float[count][];
            Parallel.For(0, count, i => tensors[i] = preprocess(files[start + i]) ?? throw new InvalidOperationException($"cannot decode {files[start + i]}"));
            Run(session, tensors).CopyTo(results, start);
        }

        return results;
    }

    /// <summary>Subtracts the mean of the indexed vectors from both sides (the features are all non-negative, so every
    /// pair starts at a similarity of about 0.5), then renormalises.</summary>
    private static (float[][] Index, float[][] Queries) Centre(float[][] index, float[][] queries)
    {
        var mean = new float[index[0].Length];
        foreach (var v in index)
        {
            for (var d = 0; d < mean.Length; d++)
            {
                mean[d] += v[d] / index.Length;
            }
        }

        float[][] Shift(float[][] set) => Normalize(set.Select(v => v.Select((x, d) => x - mean[d]).ToArray()).ToArray());
        return (Shift(index), Shift(queries));
    }

    /// <summary>The model's raw <c>embedding</c> output for 224x224 NHWC tensors, one inference.</summary>
    internal static float[][] Run(InferenceSession session, float[][] tensors)
    {
        var input = new float[tensors.Length * Length];
        for (var i = 0; i < tensors.Length; i++)
        {
            tensors[i].CopyTo(input, i * Length);
        }

        using var value = OrtValue.CreateTensorValueFromMemory(input, [tensors.Length, Side, Side, 3]);
        // Held in a local until the run ends: a RunOptions only passed inline can be finalised during the native call.
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["images"], [value], ["embedding"]);
        var flat = outputs[0].GetTensorDataAsSpan<float>();
        var dims = flat.Length / tensors.Length;
        var vectors = new float[tensors.Length][];
        for (var i = 0; i < vectors.Length; i++)
        {
            vectors[i] = flat.Slice(i * dims, dims).ToArray();
        }

        return vectors;
    }

    private static float[]? PortPreprocess(ImagePreprocessor preprocessor, string file)
    {
        var tensor = new float[Length];
        return preprocessor.Preprocess(File.ReadAllBytes(file), tensor).IsRejected ? null : tensor;
    }

    /// <summary>The original's steps: decode everything at full size (no orientation), centre square, bilinear resize, /255.</summary>
    private static float[]? OriginalPreprocess(string file)
    {
        using var decoded = SKBitmap.Decode(file);
        if (decoded is null)
        {
            return null;
        }

        var side = Math.Min(decoded.Width, decoded.Height);
        var crop = SKRect.Create((decoded.Width - side) / 2, (decoded.Height - side) / 2, side, side);
        using var image = SKImage.FromBitmap(decoded);
        using var resized = new SKBitmap(new SKImageInfo(Side, Side, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(resized))
        {
            // Plain bilinear, no mipmaps: what tf.image.resizeBilinear does.
            canvas.DrawImage(image, crop, SKRect.Create(Side, Side), new SKSamplingOptions(SKFilterMode.Linear), null);
        }

        var pixels = resized.GetPixelSpan();
        var tensor = new float[Length];
        for (var i = 0; i < Side * Side; i++)
        {
            tensor[i * 3] = pixels[i * 4] / 255f;
            tensor[(i * 3) + 1] = pixels[(i * 4) + 1] / 255f;
            tensor[(i * 3) + 2] = pixels[(i * 4) + 2] / 255f;
        }

        return tensor;
    }

    private static float[][] Normalize(float[][] a) => a.Select(v =>
    {
        var norm = System.Numerics.Tensors.TensorPrimitives.Norm<float>(v);
        return norm > 0 ? v.Select(x => x / norm).ToArray() : v;
    }).ToArray();
}
