using System.CommandLine;
using ReverseImageSearch.Emulator;

var images = new Option<DirectoryInfo?>("--images") { Description = "Folder of images to index (the bucket). Default for serve: a generated sample set." };
var data = new Option<DirectoryInfo>("--data")
{
    Description = "Folder for the index and its state.",
    DefaultValueFactory = _ => new DirectoryInfo(".data"),
};
var port = new Option<int>("--port") { Description = "HTTP port of the callable and the search page.", DefaultValueFactory = _ => 5001 };
var host = new Option<string>("--host") { Description = "Address to listen on.", DefaultValueFactory = _ => "127.0.0.1" };
var allowOrigins = new Option<string[]>("--allow-origin")
{
    Description = "Another web page origin (scheme://host[:port]) allowed to call the callable; loopback pages and the server's own page always may. Repeatable.",
    AllowMultipleArgumentsPerToken = false,
};
var neighbors = new Option<int>("--neighbors") { Description = "Nearest stored images to print per query image.", DefaultValueFactory = _ => 10 };
var format = new Option<string>("--format") { Description = "Output: tsv or json.", DefaultValueFactory = _ => "tsv" };
format.AcceptOnlyFromAmong("tsv", "json");
var paths = new Argument<string[]>("PATH") { Description = "Query images, or folders of them.", Arity = ArgumentArity.OneOrMore };
var indexImages = new Option<DirectoryInfo>("--images") { Description = "Folder of images to index (the bucket).", Required = true };

var serve = new Command("serve", "Index a folder, keep it current and serve the queryIndex callable and a search page.") { images, data, port, host, allowOrigins };
serve.SetAction((result, ct) => EmulatorCommands.ServeAsync(
    result.GetValue(images), result.GetValue(data)!, result.GetValue(host)!, result.GetValue(port), result.GetValue(allowOrigins) ?? [], ct));

var index = new Command("index", "Backfill a folder with a progress bar; exit 0 once the index is deployed.") { indexImages, data };
index.SetAction((result, ct) => EmulatorCommands.IndexAsync(result.GetValue(indexImages)!, result.GetValue(data)!, ct));

var query = new Command("query", "Print the nearest stored images of each query image.") { data, neighbors, format, paths };
query.SetAction((result, ct) => EmulatorCommands.QueryAsync(result.GetValue(data)!, result.GetValue(neighbors), result.GetValue(format)!, result.GetValue(paths)!, ct));

var root = new RootCommand("Reverse image search for Firebase: the nine functions on one machine.") { serve, index, query };
return await root.Parse(args).InvokeAsync();
