using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp.Pipeline;

/// <summary>
/// Cloud Storage for the simulated cloud: the JSON API subset the adapter uses (objects.list, objects.get with
/// and without alt=media, media and resumable uploads, objects.delete), served through the contract server from
/// memory, with Google's metadata shapes (int64 as strings, md5Hash and crc32c base64, microsecond generations).
/// Playing Eventarc, it posts google.cloud.storage.object.v1.finalized / .deleted to streamUpdateDatapoint /
/// streamRemoveDatapoint for changes in the images bucket (the only bucket the extension's triggers watch), once
/// <see cref="Triggers"/> is set. It is also an <see cref="IObjectStore"/> so the simulated Vector Search can read
/// datapoint files from it, as Vertex AI reads them from Cloud Storage.
/// </summary>
public sealed class SimulatedStorage : IObjectStore
{
    private readonly ConcurrentDictionary<(string Bucket, string Name), StoredBlob> _objects = new();
    private readonly ConcurrentDictionary<string, (string Bucket, string Name, string ContentType)> _sessions = new();
    private readonly ConcurrentQueue<Task> _deliveries = new();
    private readonly Lock _generationGate = new();
    private readonly ContractServer _server;
    private long _lastGeneration;

    public SimulatedStorage(ContractServer server, string imagesBucket)
    {
        _server = server;
        ImagesBucket = imagesBucket;
        _server.Handle("storage.objects.list", List);
        _server.Handle("storage.objects.get", Get);
        _server.Handle("storage.objects.delete", Delete);
        _server.Handle("storage.objects.insert", Insert);
        _server.Handle(ContractServer.UploadSessionMethod, Session);
    }

    public string ImagesBucket { get; }

    /// <summary>Set once the extension is installed: from then on image changes are delivered as events.</summary>
    public Eventarc? Triggers { get; set; }

    /// <summary>Problems the simulation saw (failed event deliveries and the like); the test asserts none.</summary>
    public ConcurrentQueue<string> Problems { get; } = new();

    public byte[]? Content(string bucket, string name) => _objects.TryGetValue((bucket, name), out var o) ? o.Data : null;

    public IReadOnlyList<string> Names(string bucket) =>
        _objects.Keys.Where(k => k.Bucket == bucket).Select(k => k.Name).Order(StringComparer.Ordinal).ToArray();

    /// <summary>Waits for the event deliveries started so far.</summary>
    public async Task DrainEventsAsync()
    {
        while (_deliveries.TryDequeue(out var delivery))
        {
            await delivery;
        }
    }

    // ---- IObjectStore (what Vertex AI reads: the datapoint files) ----

    public async IAsyncEnumerable<StoredObject> ListAsync(string bucket, string? prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var name in Names(bucket).Where(n => n.StartsWith(prefix ?? "", StringComparison.Ordinal)))
        {
            if (_objects.TryGetValue((bucket, name), out var blob))
            {
                yield return blob.ToStoredObject();
            }
        }

        await Task.CompletedTask;
    }

    public Task<StoredObject?> GetMetadataAsync(string bucket, string name, CancellationToken cancellationToken = default) =>
        Task.FromResult(_objects.TryGetValue((bucket, name), out var blob) ? blob.ToStoredObject() : null);

    public Task<byte[]> ReadAsync(string bucket, string name, CancellationToken cancellationToken = default) =>
        _objects.TryGetValue((bucket, name), out var blob) ? Task.FromResult(blob.Data) : throw new ObjectNotFoundException(bucket, name);

    public Task<StoredObject> WriteAsync(string bucket, string name, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken = default) =>
        Task.FromResult(Store(bucket, name, content.ToArray(), contentType).ToStoredObject());

    public Task<bool> DeleteAsync(string bucket, string name, CancellationToken cancellationToken = default) =>
        Task.FromResult(Remove(bucket, name));

    /// <summary>An object that was there before the extension was installed (no trigger fires).</summary>
    public void Seed(string bucket, string name, byte[] data, string contentType) => Store(bucket, name, data, contentType);

    // ---- the JSON API ----

    private StoredBlob Store(string bucket, string name, byte[] data, string contentType)
    {
        long generation;
        lock (_generationGate)
        {
            // Generations are microsecond timestamps, strictly increasing.
            generation = Math.Max(_lastGeneration + 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000);
            _lastGeneration = generation;
        }

        var now = DateTimeOffset.UtcNow;
        var blob = new StoredBlob(bucket, name, data, contentType, generation, now);
        StoredBlob? replaced = null;
        _objects.AddOrUpdate((bucket, name), blob, (_, old) =>
        {
            replaced = old;
            return blob;
        });
        if (replaced is not null)
        {
            // A non-versioned bucket deletes the overwritten generation: Eventarc delivers deleted for it too.
            Announce("google.cloud.storage.object.v1.deleted", "streamRemoveDatapoint", replaced);
        }

        Announce("google.cloud.storage.object.v1.finalized", "streamUpdateDatapoint", blob);
        return blob;
    }

    private bool Remove(string bucket, string name)
    {
        if (!_objects.TryRemove((bucket, name), out var removed))
        {
            return false;
        }

        Announce("google.cloud.storage.object.v1.deleted", "streamRemoveDatapoint", removed);
        return true;
    }

    private void Announce(string type, string function, StoredBlob blob)
    {
        if (Triggers is not { } eventarc || blob.Bucket != ImagesBucket)
        {
            return;
        }

        var data = JsonSerializer.SerializeToUtf8Bytes(blob.Resource(type.EndsWith("deleted", StringComparison.Ordinal)));
        _deliveries.Enqueue(Task.Run(async () =>
        {
            try
            {
                var status = await eventarc.PostAsync(
                    function,
                    type,
                    $"//storage.googleapis.com/projects/_/buckets/{blob.Bucket}",
                    $"objects/{blob.Name}",
                    new Dictionary<string, string> { ["bucket"] = blob.Bucket },
                    data,
                    "application/json",
                    CancellationToken.None);
                if (status / 100 != 2)
                {
                    Problems.Enqueue($"{function} answered {status} to {type} for {blob.Name}");
                }
            }
            catch (HttpRequestException e)
            {
                Problems.Enqueue($"{function} could not be reached for {type} {blob.Name}: {e.Message}");
            }
        }));
    }

    private static (string Bucket, string? Name) Parse(RecordedRequest r)
    {
        // /storage/v1/b/{bucket}/o[/{object}] or /upload/storage/v1/b/{bucket}/o
        var parts = r.RawPath.Split('/');
        var b = Array.IndexOf(parts, "b");
        return (Uri.UnescapeDataString(parts[b + 1]), parts.Length > b + 3 ? Uri.UnescapeDataString(parts[b + 3]) : null);
    }

    private Reply List(RecordedRequest r)
    {
        var (bucket, _) = Parse(r);
        var prefix = r.QueryValue("prefix") ?? "";
        var max = int.Parse(r.QueryValue("maxResults") ?? "1000", CultureInfo.InvariantCulture);
        var start = int.Parse(r.QueryValue("pageToken") ?? "0", CultureInfo.InvariantCulture);
        var names = Names(bucket).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).ToArray();
        var page = names.Skip(start).Take(max)
            .Select(n => _objects.TryGetValue((bucket, n), out var blob) ? blob.Resource(deleted: false) : null)
            .OfType<Dictionary<string, object>>()
            .ToArray();
        var body = new Dictionary<string, object> { ["kind"] = "storage#objects" };
        if (page.Length > 0)
        {
            body["items"] = page; // absent when empty, as Cloud Storage answers
        }

        if (start + max < names.Length)
        {
            body["nextPageToken"] = (start + max).ToString(CultureInfo.InvariantCulture);
        }

        return Reply.Ok(JsonSerializer.Serialize(body));
    }

    private Reply Get(RecordedRequest r)
    {
        var (bucket, name) = Parse(r);
        if (name is null || !_objects.TryGetValue((bucket, name), out var blob))
        {
            return NotFound(bucket, name);
        }

        return r.QueryValue("alt") == "media"
            ? new Reply(200, Bytes: blob.Data, BytesContentType: blob.ContentType, Headers: new Dictionary<string, string>
            {
                ["x-goog-generation"] = blob.Generation.ToString(CultureInfo.InvariantCulture),
                ["x-goog-hash"] = $"crc32c={blob.Crc32c},md5={blob.Md5}",
            })
            : Reply.Ok(JsonSerializer.Serialize(blob.Resource(deleted: false)));
    }

    private Reply Delete(RecordedRequest r)
    {
        var (bucket, name) = Parse(r);
        return name is not null && Remove(bucket, name) ? new Reply(204) : NotFound(bucket, name);
    }

    private Reply Insert(RecordedRequest r)
    {
        var (bucket, _) = Parse(r);
        if (r.QueryValue("uploadType") == "media")
        {
            var name = r.QueryValue("name")!;
            return Reply.Ok(JsonSerializer.Serialize(Store(bucket, name, r.Body, r.ContentType!).Resource(deleted: false)));
        }

        var id = Guid.NewGuid().ToString("N");
        _sessions[id] = (bucket, r.Json.GetProperty("name").GetString()!, r.Headers["X-Upload-Content-Type"].ToString());
        return new Reply(200, Headers: new Dictionary<string, string>
        {
            ["Location"] = _server.Url($"/upload/storage/v1/b/{Uri.EscapeDataString(bucket)}/o?uploadType=resumable&upload_id={id}").ToString(),
        });
    }

    private Reply Session(RecordedRequest r)
    {
        if (!_sessions.TryRemove(r.QueryValue("upload_id")!, out var s))
        {
            return NotFound(r.RawPath, null);
        }

        return Reply.Ok(JsonSerializer.Serialize(Store(s.Bucket, s.Name, r.Body, s.ContentType).Resource(deleted: false)));
    }

    /// <summary>Cloud Storage's older error shape: no status, an errors array.</summary>
    private static Reply NotFound(string bucket, string? name)
    {
        var message = $"No such object: {bucket}/{name}";
        return new Reply(404, JsonSerializer.Serialize(new
        {
            error = new { code = 404, message, errors = new[] { new { domain = "global", reason = "notFound", message } } },
        }));
    }

    private sealed record StoredBlob(string Bucket, string Name, byte[] Data, string ContentType, long Generation, DateTimeOffset Created)
    {
        public string Md5 { get; } = Convert.ToBase64String(MD5.HashData(Data));

        public string Crc32c { get; } = Convert.ToBase64String(Crc32C.BigEndian(Data));

        public StoredObject ToStoredObject() =>
            new(Bucket, Name, Data.Length, ContentType, Md5, Crc32c, Generation, 1, Created);

        /// <summary>The object resource (and the storage CloudEvents' StorageObjectData): int64 fields as strings.</summary>
        public Dictionary<string, object> Resource(bool deleted)
        {
            var time = Created.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
            var generation = Generation.ToString(CultureInfo.InvariantCulture);
            var resource = new Dictionary<string, object>
            {
                ["kind"] = "storage#object",
                ["id"] = $"{Bucket}/{Name}/{generation}",
                ["selfLink"] = $"https://www.googleapis.com/storage/v1/b/{Bucket}/o/{Uri.EscapeDataString(Name)}",
                ["mediaLink"] = $"https://storage.googleapis.com/download/storage/v1/b/{Bucket}/o/{Uri.EscapeDataString(Name)}?generation={generation}&alt=media",
                ["name"] = Name,
                ["bucket"] = Bucket,
                ["generation"] = generation,
                ["metageneration"] = "1",
                ["contentType"] = ContentType,
                ["storageClass"] = "STANDARD",
                ["size"] = Data.Length.ToString(CultureInfo.InvariantCulture),
                ["md5Hash"] = Md5,
                ["crc32c"] = Crc32c,
                ["etag"] = Convert.ToBase64String(Encoding.ASCII.GetBytes(generation))[..12],
                ["timeCreated"] = time,
                ["updated"] = time,
                ["timeStorageClassUpdated"] = time,
            };
            if (deleted)
            {
                resource["timeDeleted"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
            }

            return resource;
        }
    }
}

/// <summary>CRC-32C (Castagnoli), as Cloud Storage reports it: the 4 bytes big-endian, base64.</summary>
internal static class Crc32C
{
    private static readonly uint[] Table = Enumerable.Range(0, 256).Select(i =>
    {
        var c = (uint)i;
        for (var k = 0; k < 8; k++)
        {
            c = (c & 1) != 0 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
        }

        return c;
    }).ToArray();

    public static byte[] BigEndian(byte[] data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        crc ^= 0xFFFFFFFFu;
        return [(byte)(crc >> 24), (byte)(crc >> 16), (byte)(crc >> 8), (byte)crc];
    }
}
