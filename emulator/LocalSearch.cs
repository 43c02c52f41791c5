using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Functions;

namespace ReverseImageSearch.Emulator;

/// <param name="DisplayName">How the query is named in the output.</param>
public sealed record QueryFile(string Path, string DisplayName);

public sealed record FoundNeighbor(string Id, double Distance);

public sealed record QueryOutcome(IReadOnlyList<FoundNeighbor>? Neighbors, string? Error);

/// <summary>The query command's inputs: files as given, folders expanded to their images (relative names).</summary>
public static class QueryFiles
{
    public static IReadOnlyList<QueryFile> Expand(IEnumerable<string> paths)
    {
        var files = new List<QueryFile>();
        foreach (var path in paths)
        {
            if (Directory.Exists(path))
            {
                files.AddRange(Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                    .Where(f => ImageScope.IsImageCandidate(f, null) && !System.IO.Path.GetFileName(f).StartsWith('.'))
                    .Order(StringComparer.Ordinal)
                    .Select(f => new QueryFile(f, System.IO.Path.GetRelativePath(path, f).Replace('\\', '/'))));
            }
            else
            {
                files.Add(new QueryFile(path, path));
            }
        }

        return files;
    }
}

/// <summary>Runs queries through the queryIndex function itself, as the callable would.</summary>
public sealed class LocalSearch(QueryIndex queryIndex, ExtensionOptions options)
{
    public async Task<IReadOnlyList<(QueryFile Query, QueryOutcome Result)>> RunAsync(
        IReadOnlyList<QueryFile> batch, int neighbors, CancellationToken cancellationToken)
    {
        var images = new List<(QueryFile Query, byte[] Bytes)>();
        var results = new List<(QueryFile, QueryOutcome)>();
        foreach (var query in batch)
        {
            if (!File.Exists(query.Path))
            {
                results.Add((query, new QueryOutcome(null, "no such file")));
            }
            else if (new FileInfo(query.Path).Length > options.MaxImageBytes)
            {
                results.Add((query, new QueryOutcome(null, $"larger than MAX_IMAGE_BYTES ({options.MaxImageBytes})")));
            }
            else
            {
                images.Add((query, await File.ReadAllBytesAsync(query.Path, cancellationToken)));
            }
        }

        try
        {
            var answers = await CallAsync(images.Select(i => i.Bytes).ToArray(), neighbors, cancellationToken);
            results.AddRange(images.Select((image, i) => (image.Query, new QueryOutcome(answers[i], null))));
        }
        catch (FunctionException) when (images.Count > 1)
        {
            // One unusable image fails the whole call; ask again one by one to name it.
            foreach (var (query, bytes) in images)
            {
                results.Add((query, await RunOneAsync(bytes, neighbors, cancellationToken)));
            }
        }
        catch (FunctionException ex)
        {
            results.AddRange(images.Select(image => (image.Query, new QueryOutcome(null, ex.Message))));
        }

        var order = batch.Select((q, i) => (q, i)).ToDictionary(p => p.q, p => p.i);
        return results.OrderBy(r => order[r.Item1]).ToArray();
    }

    private async Task<QueryOutcome> RunOneAsync(byte[] bytes, int neighbors, CancellationToken cancellationToken)
    {
        try
        {
            return new QueryOutcome((await CallAsync([bytes], neighbors, cancellationToken))[0], null);
        }
        catch (FunctionException ex)
        {
            return new QueryOutcome(null, ex.Message);
        }
    }

    private async Task<IReadOnlyList<FoundNeighbor>[]> CallAsync(byte[][] images, int neighbors, CancellationToken cancellationToken)
    {
        var data = new JsonObject
        {
            ["query"] = new JsonArray(images.Select(b => (JsonNode)Convert.ToBase64String(b)).ToArray()),
            ["neighbours"] = neighbors,
        };
        var request = new CallableRequest(JsonSerializer.SerializeToElement(data, CoreJson.Options), TrustedLocalCaller.LocalUser);
        var result = (JsonElement)(await queryIndex.HandleAsync(request, cancellationToken))!;
        return result.GetProperty("data").GetProperty("nearestNeighbors").EnumerateArray()
            .Select(entry => (IReadOnlyList<FoundNeighbor>)(entry.TryGetProperty("neighbors", out var found)
                ? found.EnumerateArray().Select(n => new FoundNeighbor(
                    n.GetProperty("datapoint").GetProperty("datapointId").GetString()!,
                    n.TryGetProperty("distance", out var d) ? d.GetDouble() : 0)).ToArray()
                : []))
            .ToArray();
    }
}

/// <summary>
/// Writes query results as TSV (a header, then one line per neighbour: query, rank from 1, neighbour,
/// distance with invariant digits) or as one JSON array.
/// </summary>
public sealed class QueryPrinter(string format, TextWriter output)
{
    public const string Tsv = "tsv";
    public const string Json = "json";

    private readonly List<object> json = [];
    private bool headerWritten;

    public void Add(string query, IReadOnlyList<FoundNeighbor> neighbors)
    {
        if (format == Json)
        {
            json.Add(new { query, neighbors });
            return;
        }

        if (!headerWritten)
        {
            output.WriteLine("query\trank\tneighbor\tdistance");
            headerWritten = true;
        }

        for (var i = 0; i < neighbors.Count; i++)
        {
            output.WriteLine(string.Join('\t', query, (i + 1).ToString(CultureInfo.InvariantCulture), neighbors[i].Id, neighbors[i].Distance.ToString("F6", CultureInfo.InvariantCulture)));
        }
    }

    public void Flush()
    {
        if (format == Json)
        {
            output.WriteLine(JsonSerializer.Serialize(json, new JsonSerializerOptions(CoreJson.Options) { WriteIndented = true }));
        }

        output.Flush();
    }
}
