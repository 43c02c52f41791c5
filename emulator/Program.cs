using System.CommandLine;
using ReverseImageSearch.Emulator;

var images = new Option<DirectoryInfo?>("--images")
{
    Description = "Folder of images to index (the bucket). Default for serve: a generated sample set.",
    CustomParser = ArgumentRules.ExistingFolder,
};
var data = new Option<DirectoryInfo>("--data")
{
    Description = "Folder for the index and its state.",
    DefaultValueFactory = _ => new DirectoryInfo(".data"),
    CustomParser = ArgumentRules.Folder,
};
var port = new Option<int>("--port")
{
    Description = "HTTP port of the callable and the search page.",
    DefaultValueFactory = _ => 5001,
    CustomParser = ArgumentRules.WholeNumber(1, 65535),
};
var host = new Option<string>("--host")
{
    Description = "Address to listen on.",
    DefaultValueFactory = _ => "127.0.0.1",
    CustomParser = ArgumentRules.ListenAddress,
};
var neighbors = new Option<int>("--neighbors")
{
    Description = "Nearest stored images to print per query image.",
    DefaultValueFactory = _ => 10,
    CustomParser = ArgumentRules.WholeNumber(1, ReverseImageSearch.Functions.QueryIndex.MaxNeighbors),
};
var format = new Option<string>("--format")
{
    Description = "Output: tsv (query, rank, neighbour, distance per line, with a header) or json.",
    DefaultValueFactory = _ => QueryPrinter.Tsv,
    CustomParser = result => ArgumentRules.OneOf(result, QueryPrinter.Tsv, QueryPrinter.Json),
};
var paths = new Argument<string[]>("PATH")
{
    Description = "Query images, or folders of them.",
    Arity = ArgumentArity.ZeroOrMore,
    CustomParser = ArgumentRules.ExistingPaths,
};
var storedPaths = new Option<string[]>("--path")
{
    Description = "A stored image (its name in the images folder, such as shop/dresses/red.jpg) to search from: more like it, itself left out. Repeatable.",
    AllowMultipleArgumentsPerToken = false,
    CustomParser = ArgumentRules.StoredObjectNames,
};
var folder = new Option<string?>("--folder")
{
    Description = "Answer only with stored images under this folder of the images folder (any depth).",
    CustomParser = ArgumentRules.FolderName,
};
var indexImages = new Option<DirectoryInfo>("--images")
{
    Description = "Folder of images to index (the bucket).",
    Required = true,
    CustomParser = ArgumentRules.ExistingFolder,
};
var allowOrigins = new Option<string[]>("--allow-origin")
{
    Description = "Another web page origin (scheme://host[:port]) allowed to call the callable; loopback pages and the server's own page always may. Repeatable.",
    AllowMultipleArgumentsPerToken = false,
    CustomParser = ArgumentRules.WebOrigins,
};

var metrics = new Option<bool>("--metrics")
{
    Description = "Serve the metrics (README, Operations) for Prometheus at /metrics.",
};

var serve = new Command("serve", "Index a folder, keep it current and serve the queryIndex callable and a search page.") { images, data, port, host, allowOrigins, metrics };
serve.SetAction((result, ct) => EmulatorCommands.ReportingUnusableState(() => EmulatorCommands.ServeAsync(
    result.GetValue(images), result.GetValue(data)!, result.GetValue(host)!, result.GetValue(port), result.GetValue(allowOrigins) ?? [], result.GetValue(metrics), ct)));

var index = new Command("index", "Backfill a folder with a progress bar; exit 0 once the index is deployed.") { indexImages, data };
index.SetAction((result, ct) => EmulatorCommands.ReportingUnusableState(() => EmulatorCommands.IndexAsync(result.GetValue(indexImages)!, result.GetValue(data)!, ct)));

var query = new Command("query", "Print the nearest stored images of each query image and of each stored image named with --path.")
{
    data, neighbors, format, storedPaths, folder, paths,
};
query.Validators.Add(result =>
{
    // Tokens, not values: a value whose own rule failed must be reported by that rule, not thrown here.
    if ((result.GetResult(paths)?.Tokens.Count ?? 0) == 0 && (result.GetResult(storedPaths)?.Tokens.Count ?? 0) == 0)
    {
        result.AddError("PATH or --path is required: query images (files or folders), or stored images to search from");
    }
});
query.SetAction((result, ct) => EmulatorCommands.ReportingUnusableState(() => EmulatorCommands.QueryAsync(
    result.GetValue(data)!,
    new QueryRequest(result.GetValue(paths) ?? [], result.GetValue(storedPaths) ?? [], result.GetValue(folder), result.GetValue(neighbors)),
    result.GetValue(format)!,
    ct)));

var root = new RootCommand("Reverse image search for Firebase: the nine functions on one machine.") { serve, index, query };
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    // One line, the first problem; the command's --help lists the rest of its rules.
    return ArgumentRules.Report(parsed.Errors[0].Message);
}

using var shutdown = new ShutdownSignals();

// The signals are ShutdownSignals' alone (ProcessTerminationTimeout = null turns System.CommandLine's off).
var exitCode = await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, shutdown.Token);
return shutdown.Token.IsCancellationRequested && exitCode != EmulatorCommands.Success ? shutdown.InterruptedExitCode : exitCode;
