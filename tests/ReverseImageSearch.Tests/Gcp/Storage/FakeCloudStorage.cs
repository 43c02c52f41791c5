using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp.Storage;

/// <summary>Answers the Cloud Storage methods the adapter uses from an in-memory bucket, in the documented shapes.</summary>
public sealed class FakeCloudStorage
{
    private readonly ConcurrentDictionary<(string Bucket, string Name), (byte[] Data, string ContentType, long Generation)> _objects = new();
    private readonly ConcurrentDictionary<string, (string Bucket, string Name, string ContentType)> _sessions = new();
    private long _generation = 1000;

    public FakeCloudStorage(ContractServer server)
    {
        server.Handle("storage.objects.list", List);
        server.Handle("storage.objects.get", Get);
        server.Handle("storage.objects.delete", Delete);
        server.Handle("storage.objects.insert", r => Insert(r, server));
        server.Handle(ContractServer.UploadSessionMethod, Session);
    }

    public void Put(string bucket, string name, byte[] data, string contentType = "image/jpeg") =>
        _objects[(bucket, name)] = (data, contentType, Interlocked.Increment(ref _generation));

    public byte[]? Content(string bucket, string name) => _objects.TryGetValue((bucket, name), out var o) ? o.Data : null;

    private static (string Bucket, string? Name) Parse(RecordedRequest r)
    {
        // /storage/v1/b/{bucket}/o[/{object}] or /upload/storage/v1/b/{bucket}/o
        var parts = r.RawPath.Split('/');
        var b = Array.IndexOf(parts, "b");
        var bucket = Uri.UnescapeDataString(parts[b + 1]);
        var name = parts.Length > b + 3 ? Uri.UnescapeDataString(parts[b + 3]) : null;
        return (bucket, name);
    }

    private object Resource(string bucket, string name) =>
        _objects[(bucket, name)] is var o
            ? new Dictionary<string, object>
            {
                ["kind"] = "storage#object",
                ["name"] = name,
                ["bucket"] = bucket,
                ["size"] = o.Data.Length.ToString(CultureInfo.InvariantCulture),
                ["contentType"] = o.ContentType,
                ["md5Hash"] = Convert.ToBase64String(MD5.HashData(o.Data)),
                ["crc32c"] = "AAAAAA==",
                ["generation"] = o.Generation.ToString(CultureInfo.InvariantCulture),
                ["metageneration"] = "1",
                ["updated"] = "2026-03-04T05:06:07.123Z",
            }
            : throw new InvalidOperationException();

    private Reply List(RecordedRequest r)
    {
        var (bucket, _) = Parse(r);
        var prefix = r.QueryValue("prefix") ?? "";
        var max = int.Parse(r.QueryValue("maxResults") ?? "1000", CultureInfo.InvariantCulture);
        var start = int.Parse(r.QueryValue("pageToken") ?? "0", CultureInfo.InvariantCulture);
        var names = _objects.Keys.Where(k => k.Bucket == bucket && k.Name.StartsWith(prefix, StringComparison.Ordinal))
            .Select(k => k.Name).Order(StringComparer.Ordinal).ToArray();
        var page = names.Skip(start).Take(max).Select(n => Resource(bucket, n)).ToArray();
        var body = new Dictionary<string, object>();
        if (page.Length > 0)
        {
            body["items"] = page; // absent when empty, as documented
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
        if (!_objects.TryGetValue((bucket, name!), out var o))
        {
            return NotFound();
        }

        return r.QueryValue("alt") == "media"
            ? new Reply(200, Bytes: o.Data, BytesContentType: o.ContentType)
            : Reply.Ok(JsonSerializer.Serialize(Resource(bucket, name!)));
    }

    private Reply Delete(RecordedRequest r)
    {
        var (bucket, name) = Parse(r);
        return _objects.TryRemove((bucket, name!), out _) ? new Reply(204) : NotFound();
    }

    private Reply Insert(RecordedRequest r, ContractServer server)
    {
        var (bucket, _) = Parse(r);
        if (r.QueryValue("uploadType") == "media")
        {
            var name = r.QueryValue("name")!;
            Put(bucket, name, r.Body, r.ContentType!);
            return Reply.Ok(JsonSerializer.Serialize(Resource(bucket, name)));
        }

        var meta = r.Json;
        var id = Guid.NewGuid().ToString("N");
        _sessions[id] = (bucket, meta.GetProperty("name").GetString()!, r.Headers["X-Upload-Content-Type"].ToString());
        return new Reply(200, Headers: new Dictionary<string, string>
        {
            ["Location"] = server.Url($"/upload/storage/v1/b/{Uri.EscapeDataString(bucket)}/o?uploadType=resumable&upload_id={id}").ToString(),
        });
    }

    private Reply Session(RecordedRequest r)
    {
        if (!_sessions.TryRemove(r.QueryValue("upload_id")!, out var s))
        {
            return NotFound();
        }

        Put(s.Bucket, s.Name, r.Body, s.ContentType);
        return Reply.Ok(JsonSerializer.Serialize(Resource(s.Bucket, s.Name)));
    }

    /// <summary>Cloud Storage's older error shape: no status, an errors array.</summary>
    private static Reply NotFound() =>
        new(404, """{"error":{"code":404,"message":"No such object: b/o","errors":[{"domain":"global","reason":"notFound","message":"No such object: b/o"}]}}""");
}
