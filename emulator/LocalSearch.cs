using System.Globalization;
using System.Text.Json;
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

/// <summary>What the query command asks: image files or folders, stored images to search from, and an optional folder to answer from.</summary>
public sealed record QueryRequest(IReadOnlyList<string> Files, IReadOnlyList<string> StoredPaths, string? Folder, int Neighbors);

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

/// <summary>Runs queries through the queryIndex function itself: its typed call, with the checks and answers of the callable.</summary>
public sealed class LocalSearch(QueryIndex queryIndex, ExtensionOptions options)
{
    public async Task<IReadOnlyList<(QueryFile Query, QueryOutcome Result)>> RunAsync(
        IReadOnlyList<QueryFile> batch, int neighbors, string? folder, CancellationToken cancellationToken)
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
            var answers = await CallAsync(images.Select(i => i.Bytes).ToArray(), [], neighbors, folder, cancellationToken);
            results.AddRange(images.Select((image, i) => (image.Query, new QueryOutcome(answers[i], null))));
        }
        catch (FunctionException) when (images.Count > 1)
        {
            // One unusable image fails the whole call; ask again one by one to name it.
            foreach (var (query, bytes) in images)
            {
                results.Add((query, await RunOneAsync([bytes], [], neighbors, folder, cancellationToken)));
            }
        }
        catch (FunctionException ex)
        {
            results.AddRange(images.Select(image => (image.Query, new QueryOutcome(null, ex.Message))));
        }

        var order = batch.Select((q, i) => (q, i)).ToDictionary(p => p.q, p => p.i);
        return results.OrderBy(r => order[r.Item1]).ToArray();
    }

    /// <summary>"More like this": each stored image's neighbours, itself left out; one unknown name is reported on its own.</summary>
    public async Task<IReadOnlyList<(string Path, QueryOutcome Result)>> RunStoredAsync(
        IReadOnlyList<string> paths, int neighbors, string? folder, CancellationToken cancellationToken)
    {
        try
        {
            var answers = await CallAsync([], paths, neighbors, folder, cancellationToken);
            return paths.Select((path, i) => (path, new QueryOutcome(answers[i], null))).ToArray();
        }
        catch (FunctionException) when (paths.Count > 1)
        {
            var results = new List<(string, QueryOutcome)>();
            foreach (var path in paths)
            {
                results.Add((path, await RunOneAsync([], [path], neighbors, folder, cancellationToken)));
            }

            return results;
        }
        catch (FunctionException ex)
        {
            return paths.Select(path => (path, new QueryOutcome(null, ex.Message))).ToArray();
        }
    }

    private async Task<QueryOutcome> RunOneAsync(byte[][] images, string[] paths, int neighbors, string? folder, CancellationToken cancellationToken)
    {
        try
        {
            return new QueryOutcome((await CallAsync(images, paths, neighbors, folder, cancellationToken))[0], null);
        }
        catch (FunctionException ex)
        {
            return new QueryOutcome(null, ex.Message);
        }
    }

    private async Task<IReadOnlyList<FoundNeighbor>[]> CallAsync(
        IReadOnlyList<byte[]> images, IReadOnlyList<string> paths, int neighbors, string? folder, CancellationToken cancellationToken)
    {
        var request = new QueryIndexRequest(images.Select(bytes => (ReadOnlyMemory<byte>)bytes).ToArray(), paths, neighbors, folder);
        var response = await queryIndex.QueryAsync(request, cancellationToken);
        return response.Data.NearestNeighbors
            .Select(entry => (IReadOnlyList<FoundNeighbor>)entry.Neighbors.Select(n => new FoundNeighbor(n.Datapoint.DatapointId, n.Distance)).ToArray())
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

    private readonly List<object> _json = [];
    private bool _headerWritten;

    public void Add(string query, IReadOnlyList<FoundNeighbor> neighbors)
    {
        if (format == Json)
        {
            _json.Add(new { query, neighbors });
            return;
        }

        if (!_headerWritten)
        {
            output.WriteLine("query\trank\tneighbor\tdistance");
            _headerWritten = true;
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
            output.WriteLine(JsonSerializer.Serialize(_json, new JsonSerializerOptions(CoreJson.Options) { WriteIndented = true }));
        }

        output.Flush();
    }
}
