using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using ReverseImageSearch.Benchmarks;
using ReverseImageSearch.Embedding;

namespace ReverseImageSearch.ModelTools;

/// <summary>
/// Step B of models/tools/quantize_int8.py: runs calibration images through the instrumented model (every tensor that
/// needs a scale is a graph output) and records each output's range. Images are preprocessed exactly as the product
/// does (ImagePreprocessor: reduced-scale decode, EXIF orientation, centre square, mipmapped resize, /255), each both
/// ways the embedder can feed the model: luma in all three channels (the default, EmbedderOptions.Grayscale) and
/// colour, so one int8 model serves either setting.
///   ris-calibrate --model INSTRUMENTED.onnx --images DIR[,DIR...] --json RANGES.json
///     [--views luma,colour] [--percentiles 99.9,99.99,99.999] [--bins 8192] [--batch 8] [--limit N]
/// Two passes over the images: min/max first, then a histogram of every tensor over [min, max], from which the
/// percentiles are read (high: the value below which p% of the values fall; low: the (100-p)% value). For 4-D
/// (NCHW) tensors it also records the mean of every channel, which quantize_int8.py uses for bias correction.
/// </summary>
internal static class Calibration
{
    private const int Side = 224;

    public static int Run(Cli cli)
    {
        var model = cli.Require("model");
        var folders = cli.Require("images").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var percentiles = cli.Get("percentiles", "99.9,99.99,99.999").Split(',').Select(p => double.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        var bins = cli.Int("bins", 8192);
        var batch = cli.Int("batch", 8);
        var files = ImageFolders.Files(folders, cli.Int("limit", int.MaxValue));

        var views = cli.Get("views", "luma,colour").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var preprocessors = views.Select(view => view switch
        {
            "luma" => new ImagePreprocessor(Side, Side, 50_000_000, grayscale: true),
            "colour" => new ImagePreprocessor(Side, Side, 50_000_000, grayscale: false),
            _ => throw new ArgumentException($"--views: luma or colour, not {view}"),
        }).ToArray();
        var tensors = new List<float[]>();
        var rejected = new List<string>();
        foreach (var file in files)
        {
            var bytes = File.ReadAllBytes(file);
            foreach (var preprocessor in preprocessors)
            {
                var tensor = new float[preprocessor.TensorLength];
                if (preprocessor.Preprocess(bytes, tensor).RejectionReason is { } reason)
                {
                    rejected.Add($"{file}: {reason}");
                    break;
                }

                tensors.Add(tensor);
            }
        }

        using var sessionOptions = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(model, sessionOptions);
        var inputName = session.InputMetadata.Keys.Single();
        var outputNames = session.OutputMetadata.Keys.ToArray();
        var min = outputNames.ToDictionary(n => n, _ => double.PositiveInfinity);
        var max = outputNames.ToDictionary(n => n, _ => double.NegativeInfinity);
        var counts = outputNames.ToDictionary(n => n, _ => 0L);
        var channelSums = new Dictionary<string, double[]>();
        var shapes = new Dictionary<string, long[]>();

        ForEachBatch(session, inputName, outputNames, tensors, batch, (name, shape, values) =>
        {
            shapes[name] = shape[1..];
            if (shape.Length == 4)
            {
                var (images, channels, plane) = ((int)shape[0], (int)shape[1], (int)(shape[2] * shape[3]));
                var sums = channelSums.TryGetValue(name, out var existing) ? existing : channelSums[name] = new double[channels];
                for (var n = 0; n < images; n++)
                {
                    for (var c = 0; c < channels; c++)
                    {
                        sums[c] += System.Numerics.Tensors.TensorPrimitives.Sum(values.Slice(((n * channels) + c) * plane, plane));
                    }
                }
            }

            var (lo, hi) = (System.Numerics.Tensors.TensorPrimitives.Min(values), System.Numerics.Tensors.TensorPrimitives.Max(values));
            min[name] = Math.Min(min[name], lo);
            max[name] = Math.Max(max[name], hi);
            counts[name] += values.Length;
        });

        var histograms = outputNames.ToDictionary(n => n, _ => new long[bins]);
        ForEachBatch(session, inputName, outputNames, tensors, batch, (name, _, values) =>
        {
            var histogram = histograms[name];
            var (lo, width) = (min[name], Math.Max(max[name] - min[name], 1e-30));
            foreach (var value in values)
            {
                var bin = (int)((value - lo) / width * bins);
                histogram[Math.Clamp(bin, 0, bins - 1)]++;
            }
        });

        var result = outputNames.ToDictionary(n => n, n =>
        {
            var (lo, width) = (min[n], (max[n] - min[n]) / bins);
            var cumulative = new long[bins];
            long running = 0;
            for (var b = 0; b < bins; b++)
            {
                running += histograms[n][b];
                cumulative[b] = running;
            }

            // The value at fraction f: the upper edge of the first bin whose cumulative count reaches f of the total
            // (for the low tail, the lower edge of that bin), clamped to the observed range.
            double At(double fraction, bool upperEdge)
            {
                var target = fraction * running;
                var bin = 0;
                while (bin < bins - 1 && cumulative[bin] < target)
                {
                    bin++;
                }

                return Math.Clamp(lo + ((bin + (upperEdge ? 1 : 0)) * width), min[n], max[n]);
            }

            return new
            {
                min = min[n],
                max = max[n],
                count = counts[n],
                shape = shapes[n],
                channelMeans = channelSums.TryGetValue(n, out var sums)
                    ? sums.Select(sum => sum / (counts[n] / sums.Length)).ToArray()
                    : null,
                percentiles = percentiles.ToDictionary(
                    p => p.ToString("0.#####", CultureInfo.InvariantCulture),
                    p => new { low = At(1 - (p / 100), upperEdge: false), high = At(p / 100, upperEdge: true) }),
            };
        });

        cli.Emit(new
        {
            model,
            imageFolders = folders,
            views,
            images = tensors.Count / views.Length,
            tensorsRun = tensors.Count,
            rejected,
            bins,
            tensors = result,
        });
        return 0;
    }

    private delegate void Visitor(string name, long[] shape, ReadOnlySpan<float> values);

    private static void ForEachBatch(InferenceSession session, string inputName, string[] outputNames, List<float[]> tensors, int batch, Visitor visit)
    {
        var length = Side * Side * 3;
        using var runOptions = new RunOptions();
        for (var start = 0; start < tensors.Count; start += batch)
        {
            var count = Math.Min(batch, tensors.Count - start);
            var input = new float[count * length];
            for (var i = 0; i < count; i++)
            {
                tensors[start + i].CopyTo(input, i * length);
            }

            using var value = OrtValue.CreateTensorValueFromMemory(input, [count, Side, Side, 3]);
            using var outputs = session.Run(runOptions, [inputName], [value], outputNames);
            for (var o = 0; o < outputNames.Length; o++)
            {
                visit(outputNames[o], outputs[o].GetTensorTypeAndShape().Shape, outputs[o].GetTensorDataAsSpan<float>());
            }
        }
    }
}
