using BenchmarkDotNet.Running;
using ReverseImageSearch.Benchmarks;

// ris-bench COMMAND [--name value ...]; every command writes its figures as one JSON object to stdout
// (or to --json FILE). "bdn" hands the rest of the arguments to BenchmarkDotNet.
if (args.Length == 0)
{
    Console.Error.WriteLine("usage: ris-bench bdn|gen-images|peak-flops|vectors|index-search|seed-index|load|quality|colour-regions|second-pass|region-cost|infer|agree|firestore-query [--option value ...]");
    return 2;
}

var options = Cli.Parse(args.Skip(1).ToArray());
switch (args[0])
{
    case "bdn":
        BenchmarkSwitcher.FromAssembly(typeof(EmbeddingBenchmarks).Assembly).Run(args.Skip(1).ToArray(), BenchConfig.Create());
        return 0;
    case "gen-images":
        return SyntheticImages.Run(options);
    case "peak-flops":
        return PeakFlops.Run(options);
    case "vectors":
        return SyntheticVectors.Run(options);
    case "index-search":
        return await IndexSearchMeasurement.RunAsync(options);
    case "seed-index":
        return SeedIndex.Run(options);
    case "load":
        return await LoadTool.RunAsync(options);
    case "quality":
        return await RetrievalQuality.RunAsync(options);
    case "colour-regions":
        return await ColourAndRegions.RunAsync(options);
    case "second-pass":
        return await SecondPassViews.RunAsync(options);
    case "region-cost":
        return await RegionSearchCost.RunAsync(options);
    case "infer":
        return InferenceTiming.Run(options);
    case "agree":
        return await ModelAgreement.RunAsync(options);
    case "firestore-query":
        return await FirestoreQueryLatency.RunAsync(options);
    default:
        Console.Error.WriteLine($"unknown command {args[0]}");
        return 2;
}
