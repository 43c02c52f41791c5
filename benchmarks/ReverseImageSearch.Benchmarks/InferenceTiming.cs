using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using ReverseImageSearch.Embedding;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// Inference only (no decoding), several models compared under the same noise: for every thread count and batch
/// size the models' sessions run in alternating blocks, so a burst of load from other processes hits each of them.
///   ris-bench infer --models A.onnx,B.onnx [--batches 1,8] [--threads 1,2] [--runs 200] [--blocks 10]
///     [--images DIR] [--spin] [--dump-optimized DIR]
/// Sessions as the product makes them: ORT_ENABLE_ALL, IntraOpNumThreads = threads, intra-op spinning off unless
/// --spin. --dump-optimized writes each model's optimised graph (SessionOptions.OptimizedModelFilePath) to
/// DIR/NAME.optimized.onnx, to see which QDQ groups ONNX Runtime fused. Inputs are preprocessed generated JPEGs.
/// </summary>
internal static class InferenceTiming
{
    private const int Side = 224;

    public static int Run(Cli cli)
    {
        var models = cli.Require("models").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var batches = Ints(cli.Get("batches", "1,8"));
        var threads = Ints(cli.Get("threads", "1,2"));
        var runs = cli.Int("runs", 200);
        var blocks = Math.Max(1, cli.Int("blocks", 10));
        var spin = cli.Flag("spin");
        var dump = cli.Get("dump-optimized", "");
        var images = InputImages(cli.Get("images", ""), batches.Max());

        var results = new List<object>();
        foreach (var threadCount in threads)
        {
            var sessions = models.Select(m => Open(m, threadCount, spin, dump)).ToArray();
            try
            {
                foreach (var batch in batches)
                {
                    var input = new float[batch * Side * Side * 3];
                    for (var i = 0; i < batch; i++)
                    {
                        images[i % images.Length].CopyTo(input, i * Side * Side * 3);
                    }

                    var times = models.Select(_ => new List<double>()).ToArray();
                    var load = LoadAverage();
                    using var value = OrtValue.CreateTensorValueFromMemory(input, [batch, Side, Side, 3]);
                    using var runOptions = new RunOptions();
                    for (var m = 0; m < sessions.Length; m++)
                    {
                        for (var w = 0; w < 5; w++)
                        {
                            RunOnce(sessions[m], runOptions, value);
                        }
                    }

                    for (var block = 0; block < blocks; block++)
                    {
                        for (var m = 0; m < sessions.Length; m++)
                        {
                            for (var r = 0; r < Math.Max(1, runs / blocks); r++)
                            {
                                var start = Stopwatch.GetTimestamp();
                                RunOnce(sessions[m], runOptions, value);
                                times[m].Add(Timing.Ms(Stopwatch.GetTimestamp() - start));
                            }
                        }
                    }

                    for (var m = 0; m < models.Length; m++)
                    {
                        times[m].Sort();
                        var median = Timing.Percentile(times[m], 50);
                        results.Add(new
                        {
                            model = models[m],
                            threads = threadCount,
                            batch,
                            runs = times[m].Count,
                            msMedian = Math.Round(median, 3),
                            msP10 = Math.Round(Timing.Percentile(times[m], 10), 3),
                            msP90 = Math.Round(Timing.Percentile(times[m], 90), 3),
                            imagesPerSecond = Math.Round(batch * 1000 / median, 1),
                            loadBefore = load,
                            loadAfter = LoadAverage(),
                        });
                        Console.Error.WriteLine($"{Path.GetFileName(models[m]),-20} threads {threadCount} batch {batch,2}: median {median,8:F3} ms  ({batch * 1000 / median,6:F1} images/s)  load {load} -> {LoadAverage()}");
                    }
                }
            }
            finally
            {
                foreach (var session in sessions)
                {
                    session.Dispose();
                }
            }
        }

        cli.Emit(new { spin, results });
        return 0;
    }

    private static int[] Ints(string list) => list.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();

    public static string LoadAverage() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

    private static InferenceSession Open(string model, int threads, bool spin, string dump)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = threads };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", spin ? "1" : "0");
        if (dump.Length > 0)
        {
            Directory.CreateDirectory(dump);
            options.OptimizedModelFilePath = Path.Combine(dump, Path.GetFileNameWithoutExtension(model) + ".optimized.onnx");
        }

        return new InferenceSession(model, options);
    }

    private static void RunOnce(InferenceSession session, RunOptions runOptions, OrtValue input)
    {
        using var outputs = session.Run(runOptions, [session.InputMetadata.Keys.First()], [input], [session.OutputMetadata.Keys.First()]);
    }

    /// <summary>Model inputs from the images of DIR (or generated JPEGs when none is given), as the product preprocesses them.</summary>
    private static float[][] InputImages(string folder, int count)
    {
        var preprocessor = new ImagePreprocessor(Side, Side, 50_000_000);
        var encoded = folder.Length > 0
            ? ImageFolders.Files([folder], count).Select(File.ReadAllBytes).ToArray()
            : Enumerable.Range(0, count).Select(i => SyntheticImages.Create(1024, 768, 7_000 + i)).ToArray();
        return encoded.Select(bytes =>
        {
            var tensor = new float[preprocessor.TensorLength];
            return preprocessor.Preprocess(bytes, tensor).IsRejected ? throw new InvalidOperationException("cannot decode an input image") : tensor;
        }).ToArray();
    }
}
