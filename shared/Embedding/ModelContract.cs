using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace ReverseImageSearch.Embedding;

/// <summary>The input and output a loaded model must have: one float32 input [N, H, W, 3] and one float32 output [N, D].</summary>
/// <param name="FixedBatchSize">1 when the model's batch dimension is fixed at 1; null when it is dynamic.</param>
internal sealed record ModelContract(string InputName, string OutputName, int Dimensions, int? FixedBatchSize)
{
    public static ModelContract Read(InferenceSession session, EmbedderOptions options)
    {
        if (session.InputMetadata.Count == 1 && session.OutputMetadata.Count == 1)
        {
            var (inputName, input) = session.InputMetadata.First();
            var (outputName, output) = session.OutputMetadata.First();
            var inputDims = input.Dimensions;
            var outputDims = output.Dimensions;
            var inputFits = IsFloatTensor(input) && inputDims.Length == 4 && IsBatchDimension(inputDims[0])
                && inputDims[1] == options.InputHeight && inputDims[2] == options.InputWidth && inputDims[3] == 3;
            var outputFits = IsFloatTensor(output) && outputDims.Length == 2 && IsBatchDimension(outputDims[0]) && outputDims[1] > 0;
            if (inputFits && outputFits)
            {
                int? fixedBatch = inputDims[0] == 1 ? 1 : null;
                return new ModelContract(inputName, outputName, outputDims[1], fixedBatch);
            }
        }

        throw new InvalidOperationException(
            $"The model {options.ModelPath} does not fit INPUT_SHAPE {options.InputHeight},{options.InputWidth}: expected one float32 input " +
            $"[N, {options.InputHeight}, {options.InputWidth}, 3] (NHWC) and one float32 output [N, D]; the model has inputs " +
            $"{Describe(session.InputMetadata)} and outputs {Describe(session.OutputMetadata)}.");
    }

    private static bool IsFloatTensor(NodeMetadata node) => node.IsTensor && node.ElementDataType == TensorElementType.Float;

    // ONNX Runtime reports a dynamic (symbolic) dimension as -1; a batch fixed at 1 still works one image at a time.
    private static bool IsBatchDimension(int dimension) => dimension is -1 or 1;

    private static string Describe(IReadOnlyDictionary<string, NodeMetadata> nodes) =>
        nodes.Count == 0
            ? "(none)"
            : string.Join(", ", nodes.Select(node =>
                $"{node.Key}: {(node.Value.IsTensor ? node.Value.ElementDataType.ToString() : node.Value.OnnxValueType.ToString())} " +
                $"[{string.Join(", ", node.Value.Dimensions.Select(d => d < 0 ? "N" : d.ToString(CultureInfo.InvariantCulture)))}]"));
}
