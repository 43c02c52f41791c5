using ReverseImageSearch.Benchmarks;
using ReverseImageSearch.ModelTools;

// ris-calibrate --model INSTRUMENTED.onnx --images DIR[,DIR...] [--json RANGES.json ...]: step B of
// models/tools/quantize_int8.py (see Calibration); make_int8.sh runs the three steps.
if (args.Length == 0)
{
    Console.Error.WriteLine("usage: ris-calibrate --model INSTRUMENTED.onnx --images DIR[,DIR...] [--json RANGES.json] [--views luma,colour] [--percentiles 99.9,99.99,99.999] [--bins 8192] [--batch 8] [--limit N]");
    return 2;
}

return Calibration.Run(Cli.Parse(args));
