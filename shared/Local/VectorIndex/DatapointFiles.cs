using System.Text;
using System.Text.Json;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Local.VectorIndex;

/// <summary>A datapoint file Vector Search would reject; the index build fails with INVALID_ARGUMENT.</summary>
internal sealed class InvalidDatapointFileException(string message) : Exception(message);

/// <summary>
/// Reads the datapoints of an index's contentsDeltaUri as Vector Search does: every *.json JSON-lines file
/// directly in the folder (not in subfolders), one {"id": ..., "embedding": [...]} per line.
/// </summary>
internal static class DatapointFiles
{
    public static (string Bucket, string Prefix) ParseFolderUri(string uri)
    {
        if (!uri.StartsWith("gs://", StringComparison.Ordinal) || uri.Length <= "gs://".Length)
        {
            throw new ArgumentException($"contentsDeltaUri '{uri}' is not a gs:// folder.", nameof(uri));
        }

        var path = uri["gs://".Length..];
        var slash = path.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            return (path, "");
        }

        var folder = path[(slash + 1)..].Trim('/');
        return (path[..slash], folder.Length == 0 ? "" : folder + "/");
    }

    public static async Task<List<IndexDatapoint>> ReadAllAsync(IObjectStore store, string contentsDeltaUri, int dimensions, CancellationToken cancellationToken)
    {
        var (bucket, prefix) = ParseFolderUri(contentsDeltaUri);
        var datapoints = new List<IndexDatapoint>();
        await foreach (var stored in store.ListAsync(bucket, prefix, cancellationToken))
        {
            var fileName = stored.Name[prefix.Length..];
            if (fileName.Contains('/', StringComparison.Ordinal) || !fileName.EndsWith(".json", StringComparison.Ordinal))
            {
                continue;
            }

            var content = await store.ReadAsync(bucket, stored.Name, cancellationToken);
            ParseFile($"gs://{bucket}/{stored.Name}", content, dimensions, datapoints);
        }

        return datapoints;
    }

    private static void ParseFile(string uri, byte[] content, int dimensions, List<IndexDatapoint> into)
    {
        var lines = Encoding.UTF8.GetString(content).Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length > 0)
            {
                into.Add(ParseLine(line, dimensions, $"{uri} line {i + 1}"));
            }
        }
    }

    private static IndexDatapoint ParseLine(string line, int dimensions, string where)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(id.GetString())
                || !root.TryGetProperty("embedding", out var embedding) || embedding.ValueKind != JsonValueKind.Array)
            {
                throw new InvalidDatapointFileException($"{where}: expected an object with a string \"id\" and an \"embedding\" array.");
            }

            if (embedding.GetArrayLength() != dimensions)
            {
                throw new InvalidDatapointFileException($"{where}: the embedding has {embedding.GetArrayLength()} dimensions; the index has {dimensions}.");
            }

            var vector = new float[dimensions];
            var d = 0;
            foreach (var value in embedding.EnumerateArray())
            {
                vector[d++] = value.ValueKind == JsonValueKind.Number
                    ? value.GetSingle()
                    : throw new InvalidDatapointFileException($"{where}: embedding value {d} is not a number.");
            }

            return new IndexDatapoint(id.GetString()!, vector);
        }
        catch (JsonException e)
        {
            throw new InvalidDatapointFileException($"{where}: not valid JSON ({e.Message}).");
        }
    }
}
