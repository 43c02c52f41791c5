using System.Buffers;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Embedding;

/// <summary>
/// Embeds images with an ONNX feature-vector model taking float32 NHWC [N, H, W, 3] in [0, 1] and giving [N, D].
/// One session per instance; concurrent calls are safe (each call owns its buffers, ONNX Runtime runs concurrently).
/// Images being stored get, with <see cref="EmbedderOptions.StoreViews"/>, their views too (<see cref="ImageViews"/>):
/// separate inferences of parts of the upright picture, finished exactly as the image's own vector, which stays the one a
/// query of the same file gets.
/// </summary>
public sealed partial class OnnxImageEmbedder : IImageEmbedder, IDisposable
{
    private readonly EmbedderOptions _options;
    private readonly ILogger<OnnxImageEmbedder> _logger;
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly ImagePreprocessor _preprocessor;
    private readonly int _maxBatchSize;
    private bool _disposed;

    public OnnxImageEmbedder(EmbedderOptions options, ILogger<OnnxImageEmbedder> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxBatchSize);
        ArgumentOutOfRangeException.ThrowIfNegative(options.IntraOpThreads);
        ArgumentOutOfRangeException.ThrowIfNegative(options.DecodeParallelism);
        _options = options;
        _logger = logger;
        _preprocessor = new ImagePreprocessor(options.InputHeight, options.InputWidth, options.MaxImagePixels, options.Grayscale,
            decodedPixels: new MemoryBudget(options.MaxImagePixels));
        _session = LoadSession(options);
        try
        {
            var contract = ModelContract.Read(_session, options);
            _inputNames = [contract.InputName];
            _outputNames = [contract.OutputName];
            Dimensions = contract.Dimensions;
            _maxBatchSize = contract.FixedBatchSize ?? options.MaxBatchSize;
        }
        catch
        {
            _session.Dispose();
            throw;
        }

        _runOptions = new RunOptions();

        LogModelLoaded(options.ModelPath, options.InputHeight, options.InputWidth, Dimensions, _maxBatchSize);
    }

    public int Dimensions { get; }

    public Task<IReadOnlyList<EmbeddingResult>> EmbedAsync(IReadOnlyList<ReadOnlyMemory<byte>> images, CancellationToken cancellationToken = default) =>
        Task.FromResult(Embed(images, withViews: false, cancellationToken));

    /// <summary>As <see cref="EmbedAsync"/>; with <see cref="EmbedderOptions.StoreViews"/> each result also carries its views.</summary>
    public Task<IReadOnlyList<EmbeddingResult>> EmbedForIndexAsync(IReadOnlyList<ReadOnlyMemory<byte>> images, CancellationToken cancellationToken = default) =>
        Task.FromResult(Embed(images, _options.StoreViews, cancellationToken));

    /// <summary>Embeds tensors already in model input form (NHWC, <paramref name="count"/> images), bypassing decoding.</summary>
    internal float[][] EmbedPreprocessed(float[] nhwc, int count)
    {
        ArgumentNullException.ThrowIfNull(nhwc);
        var tensorLength = _preprocessor.TensorLength;
        if (nhwc.Length != count * tensorLength)
        {
            throw new ArgumentException($"Expected {count} x {tensorLength} floats, got {nhwc.Length}.", nameof(nhwc));
        }

        return RunInBatches(nhwc, count);
    }

    private IReadOnlyList<EmbeddingResult> Embed(IReadOnlyList<ReadOnlyMemory<byte>> images, bool withViews, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(images);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (images.Count == 0)
        {
            return [];
        }

        using var activity = Telemetry.Source.StartActivity("embed images");
        activity?.SetTag("ris.images", images.Count);
        var started = Stopwatch.GetTimestamp();
        var results = new EmbeddingResult[images.Count];
        // Each image takes a slot of the input: its own tensor, then (with views) one per view. A round decodes as many
        // images as keep their inferences within one batch (ONNX Runtime's peak memory grows with the batch), at least one.
        var tensorsPerImage = withViews ? ImagePreprocessor.MaxTensorsPerImage : 1;
        var slotLength = tensorsPerImage * _preprocessor.TensorLength;
        var imagesPerRound = Math.Min(images.Count, Math.Max(1, _maxBatchSize / tensorsPerImage));
        var input = ArrayPool<float>.Shared.Rent(imagesPerRound * slotLength);
        var outcomes = new PreprocessResult[imagesPerRound];
        var parallelism = new ParallelOptions
        {
            MaxDegreeOfParallelism = _options.DecodeParallelism > 0 ? _options.DecodeParallelism : Environment.ProcessorCount,
            CancellationToken = cancellationToken,
        };
        try
        {
            for (var start = 0; start < images.Count; start += imagesPerRound)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var count = Math.Min(imagesPerRound, images.Count - start);
                var first = start;
                // Each image decodes straight into its own slot of the batch tensor.
                Parallel.For(0, count, parallelism, slot =>
                {
                    var destination = input.AsSpan(slot * slotLength, slotLength);
                    outcomes[slot] = withViews
                        ? _preprocessor.PreprocessWithViews(images[first + slot], destination)
                        : _preprocessor.Preprocess(images[first + slot], destination);
                });

                var accepted = CompactAccepted(input, slotLength, outcomes.AsSpan(0, count), first, results);
                var inferences = accepted.Sum(image => 1 + image.Views.Count);
                if (inferences > 0)
                {
                    var vectors = RunInBatches(input, inferences);
                    var next = 0;
                    foreach (var image in accepted)
                    {
                        var vector = vectors[next++];
                        var views = new ImageView[image.Views.Count];
                        for (var v = 0; v < views.Length; v++)
                        {
                            views[v] = new ImageView(image.Views[v], vectors[next++]);
                        }

                        results[image.Result] = EmbeddingResult.Success(vector) with { Views = views };
                    }
                }

                LogBatchEmbedded(accepted.Count, inferences, count - accepted.Count);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(input);
        }

        var perImage = Stopwatch.GetElapsedTime(started).TotalSeconds / images.Count;
        for (var i = 0; i < images.Count; i++)
        {
            Telemetry.EmbeddingDuration.Record(perImage);
        }

        return results;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _session.Dispose();
        _runOptions.Dispose();
    }

    /// <summary>
    /// Moves the tensors of accepted images (each image's own and its views', <paramref name="slotLength"/> floats
    /// apart in the input) together at the front (rejected slots and absent views would waste inference) and records
    /// rejections. Returns, in input order, the result index and the views of each accepted image.
    /// </summary>
    private List<(int Result, IReadOnlyList<string> Views)> CompactAccepted(
        float[] input, int slotLength, ReadOnlySpan<PreprocessResult> outcomes, int firstResult, EmbeddingResult[] results)
    {
        var tensorLength = _preprocessor.TensorLength;
        var accepted = new List<(int, IReadOnlyList<string>)>(outcomes.Length);
        var written = 0;
        for (var slot = 0; slot < outcomes.Length; slot++)
        {
            if (outcomes[slot].RejectionReason is { } reason)
            {
                results[firstResult + slot] = EmbeddingResult.Rejected(reason);
                continue;
            }

            var length = (1 + outcomes[slot].Views.Count) * tensorLength;
            if (written != slot * slotLength)
            {
                input.AsSpan(slot * slotLength, length).CopyTo(input.AsSpan(written, length));
            }

            written += length;
            accepted.Add((firstResult + slot, outcomes[slot].Views));
        }

        return accepted;
    }

    /// <summary>Runs the model on the first <paramref name="count"/> tensors of <paramref name="nhwc"/>, at most a batch per call.</summary>
    private float[][] RunInBatches(float[] nhwc, int count)
    {
        var tensorLength = _preprocessor.TensorLength;
        var vectors = new float[count][];
        for (var start = 0; start < count; start += _maxBatchSize)
        {
            var batch = Math.Min(_maxBatchSize, count - start);
            RunModel(nhwc.AsMemory(start * tensorLength, batch * tensorLength), batch).CopyTo(vectors, start);
        }

        return vectors;
    }

    private float[][] RunModel(Memory<float> batch, int count)
    {
        var tensorLength = _preprocessor.TensorLength;
        long[] shape = [count, _options.InputHeight, _options.InputWidth, 3];
        // The input tensor reads the (pinned) managed buffer in place; no copy into native memory.
        using var inputValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch[..(count * tensorLength)], shape);
        using var outputs = _session.Run(_runOptions, _inputNames, [inputValue], _outputNames);
        var flat = outputs[0].GetTensorDataAsSpan<float>();
        if (flat.Length != count * Dimensions)
        {
            throw new InvalidOperationException(
                $"The model {_options.ModelPath} returned {flat.Length} values for {count} images; expected {count} x {Dimensions}.");
        }

        var vectors = new float[count][];
        for (var i = 0; i < count; i++)
        {
            var vector = flat.Slice(i * Dimensions, Dimensions).ToArray();
            FinishVector(vector);
            vectors[i] = vector;
        }

        return vectors;
    }

    /// <summary>Power normalisation, then unit length, as the options ask.</summary>
    private void FinishVector(Span<float> vector)
    {
        if (_options.PowerNormalize)
        {
            for (var i = 0; i < vector.Length; i++)
            {
                // The features are ReLU6 averages, so never negative; the clamp keeps a stray -0 or rounding from NaN.
                vector[i] = MathF.Sqrt(MathF.Max(0, vector[i]));
            }
        }

        if (_options.L2Normalize)
        {
            ScaleToUnitLength(vector);
        }
    }

    private static void ScaleToUnitLength(Span<float> vector)
    {
        double sumOfSquares = 0;
        foreach (var value in vector)
        {
            sumOfSquares += (double)value * value;
        }

        // An all-zero vector has no direction; leave it as it is rather than divide by zero.
        if (sumOfSquares == 0)
        {
            return;
        }

        var scale = 1 / Math.Sqrt(sumOfSquares);
        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] = (float)(vector[i] * scale);
        }
    }

    private static InferenceSession LoadSession(EmbedderOptions options)
    {
        using var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = options.IntraOpThreads,
        };
        // Decoding runs on the same cores between inferences; idle ONNX Runtime threads must not spin on them.
        sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        try
        {
            return new InferenceSession(options.ModelPath, sessionOptions);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new InvalidOperationException($"Cannot load the ONNX model {options.ModelPath}: {ex.Message}", ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Loaded embedding model {ModelPath}: input [N, {Height}, {Width}, 3], {Dimensions}-d output, batches of up to {MaxBatchSize}")]
    private partial void LogModelLoaded(string modelPath, int height, int width, int dimensions, int maxBatchSize);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Embedded a batch: {Embedded} images in {Inferences} inferences, {Rejected} rejected")]
    private partial void LogBatchEmbedded(int embedded, int inferences, int rejected);
}
