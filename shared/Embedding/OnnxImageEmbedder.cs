using System.Buffers;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Embedding;

/// <summary>
/// Embeds images with an ONNX feature-vector model taking float32 NHWC [N, H, W, 3] in [0, 1] and giving [N, D].
/// One session per instance; concurrent calls are safe (each call owns its buffers, ONNX Runtime runs concurrently).
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

    public Task<IReadOnlyList<EmbeddingResult>> EmbedAsync(IReadOnlyList<ReadOnlyMemory<byte>> images, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (images.Count == 0)
        {
            return Task.FromResult<IReadOnlyList<EmbeddingResult>>([]);
        }

        using var activity = Telemetry.Source.StartActivity("embed images");
        activity?.SetTag("ris.images", images.Count);
        var started = Stopwatch.GetTimestamp();
        var results = new EmbeddingResult[images.Count];
        var tensorLength = _preprocessor.TensorLength;
        var batchCapacity = Math.Min(images.Count, _maxBatchSize);
        var input = ArrayPool<float>.Shared.Rent(batchCapacity * tensorLength);
        var outcomes = new PreprocessResult[batchCapacity];
        var parallelism = new ParallelOptions
        {
            MaxDegreeOfParallelism = _options.DecodeParallelism > 0 ? _options.DecodeParallelism : Environment.ProcessorCount,
            CancellationToken = cancellationToken,
        };
        try
        {
            for (var start = 0; start < images.Count; start += batchCapacity)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var count = Math.Min(batchCapacity, images.Count - start);
                var first = start;
                // Each image decodes straight into its own slot of the batch tensor.
                Parallel.For(0, count, parallelism, slot =>
                    outcomes[slot] = _preprocessor.Preprocess(images[first + slot], input.AsSpan(slot * tensorLength, tensorLength)));

                var accepted = CompactAccepted(input, outcomes.AsSpan(0, count), first, results);
                if (accepted.Count > 0)
                {
                    var vectors = RunModel(input, accepted.Count);
                    for (var i = 0; i < vectors.Length; i++)
                    {
                        results[accepted[i]] = EmbeddingResult.Success(vectors[i]);
                    }
                }

                LogBatchEmbedded(accepted.Count, count - accepted.Count);
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

        return Task.FromResult<IReadOnlyList<EmbeddingResult>>(results);
    }

    /// <summary>Embeds tensors already in model input form (NHWC, <paramref name="count"/> images), bypassing decoding.</summary>
    internal float[][] EmbedPreprocessed(float[] nhwc, int count)
    {
        ArgumentNullException.ThrowIfNull(nhwc);
        var tensorLength = _preprocessor.TensorLength;
        if (nhwc.Length != count * tensorLength)
        {
            throw new ArgumentException($"Expected {count} x {tensorLength} floats, got {nhwc.Length}.", nameof(nhwc));
        }

        var vectors = new float[count][];
        for (var start = 0; start < count; start += _maxBatchSize)
        {
            var batch = Math.Min(_maxBatchSize, count - start);
            RunModel(nhwc.AsMemory(start * tensorLength, batch * tensorLength), batch).CopyTo(vectors, start);
        }

        return vectors;
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
    /// Moves the tensors of accepted images to the front of the batch (rejected slots would waste inference) and
    /// records rejections. Returns, in order, the result index of each accepted tensor.
    /// </summary>
    private List<int> CompactAccepted(float[] input, ReadOnlySpan<PreprocessResult> outcomes, int firstResult, EmbeddingResult[] results)
    {
        var tensorLength = _preprocessor.TensorLength;
        var accepted = new List<int>(outcomes.Length);
        for (var slot = 0; slot < outcomes.Length; slot++)
        {
            if (outcomes[slot].RejectionReason is { } reason)
            {
                results[firstResult + slot] = EmbeddingResult.Rejected(reason);
                continue;
            }

            if (accepted.Count != slot)
            {
                input.AsSpan(slot * tensorLength, tensorLength).CopyTo(input.AsSpan(accepted.Count * tensorLength, tensorLength));
            }

            accepted.Add(firstResult + slot);
        }

        return accepted;
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

    [LoggerMessage(Level = LogLevel.Debug, Message = "Embedded a batch: {Embedded} images, {Rejected} rejected")]
    private partial void LogBatchEmbedded(int embedded, int rejected);
}
