using System.Globalization;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Gcp.Http;

namespace ReverseImageSearch.Gcp.Storage;

/// <summary><see cref="IObjectStore"/> over the Cloud Storage JSON API v1 (int64 fields arrive as strings; the web JSON defaults read them).</summary>
public sealed class CloudStorageObjectStore(GoogleRestClient client, GcpEndpoints endpoints, GcpAdapterOptions options) : IObjectStore
{
    /// <summary>The object fields this adapter reads (list answers are trimmed to them).</summary>
    public const string ObjectFields = "name,bucket,size,contentType,md5Hash,crc32c,generation,metageneration,updated";

    private readonly string _apiBase = endpoints.StorageBase.ToString().TrimEnd('/');
    private readonly string _uploadBase = endpoints.StorageUploadBase.ToString().TrimEnd('/');

    public async IAsyncEnumerable<StoredObject> ListAsync(string bucket, string? prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? pageToken = null;
        do
        {
            var query = new StringBuilder();
            if (!string.IsNullOrEmpty(prefix))
            {
                Append(query, "prefix", prefix);
            }

            Append(query, "maxResults", options.ListPageSize.ToString(CultureInfo.InvariantCulture));
            if (pageToken is not null)
            {
                Append(query, "pageToken", pageToken);
            }

            Append(query, "fields", $"items({ObjectFields}),nextPageToken");
            var page = await client.SendJsonAsync<ObjectsPage>(HttpMethod.Get, new Uri($"{BucketUrl(bucket)}/o{query}"), null, cancellationToken);
            foreach (var item in page.Items ?? [])
            {
                yield return item.ToStoredObject(bucket);
            }

            pageToken = string.IsNullOrEmpty(page.NextPageToken) ? null : page.NextPageToken;
        }
        while (pageToken is not null);
    }

    public async Task<StoredObject?> GetMetadataAsync(string bucket, string name, CancellationToken cancellationToken = default)
    {
        try
        {
            var resource = await client.SendJsonAsync<ObjectResource>(HttpMethod.Get, ObjectUri(bucket, name, null), null, cancellationToken);
            return resource.ToStoredObject(bucket);
        }
        catch (ServiceException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    public async Task<byte[]> ReadAsync(string bucket, string name, CancellationToken cancellationToken = default)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, ObjectUri(bucket, name, "?alt=media"));
            using var response = await client.SendAsync(request, cancellationToken);
            return await response.Content.ReadAsByteArrayAsync(cancellationToken);
        }
        catch (ServiceException e) when (e.IsNotFound)
        {
            throw new ObjectNotFoundException(bucket, name);
        }
    }

    public async Task<StoredObject> WriteAsync(string bucket, string name, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentException.ThrowIfNullOrEmpty(contentType);
        var resource = content.Length > options.ResumableUploadThreshold
            ? await ResumableUploadAsync(bucket, name, content, contentType, cancellationToken)
            : await MediaUploadAsync(bucket, name, content, contentType, cancellationToken);
        return resource.ToStoredObject(bucket);
    }

    public async Task<bool> DeleteAsync(string bucket, string name, CancellationToken cancellationToken = default)
    {
        try
        {
            await client.SendJsonAsync(HttpMethod.Delete, ObjectUri(bucket, name, null), null, cancellationToken);
            return true;
        }
        catch (ServiceException e) when (e.IsNotFound)
        {
            return false;
        }
    }

    private async Task<ObjectResource> MediaUploadAsync(string bucket, string name, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken)
    {
        var query = new StringBuilder();
        Append(query, "uploadType", "media");
        Append(query, "name", name);
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"{_uploadBase}/b/{Uri.EscapeDataString(bucket)}/o{query}"))
        {
            Content = Bytes(content, contentType),
        };
        using var response = await client.SendAsync(request, cancellationToken);
        return await GoogleRestClient.ReadJsonAsync<ObjectResource>(response, cancellationToken);
    }

    private async Task<ObjectResource> ResumableUploadAsync(string bucket, string name, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken)
    {
        var query = new StringBuilder();
        Append(query, "uploadType", "resumable");
        Uri session;
        using (var start = GoogleRestClient.CreateJsonRequest(
            HttpMethod.Post,
            new Uri($"{_uploadBase}/b/{Uri.EscapeDataString(bucket)}/o{query}"),
            new ObjectInsert(name, contentType)))
        {
            start.Headers.Add("X-Upload-Content-Type", contentType);
            start.Headers.Add("X-Upload-Content-Length", content.Length.ToString(CultureInfo.InvariantCulture));
            using var started = await client.SendAsync(start, cancellationToken);
            session = started.Headers.Location
                ?? throw new ServiceException((int)started.StatusCode, "INTERNAL", "Resumable upload answered without a Location session URI.");
        }

        // One PUT of the whole content: the session keeps the upload restartable without our own chunking.
        using var put = new HttpRequestMessage(HttpMethod.Put, session) { Content = Bytes(content, contentType) };
        using var response = await client.SendAsync(put, cancellationToken);
        return await GoogleRestClient.ReadJsonAsync<ObjectResource>(response, cancellationToken);
    }

    private static ReadOnlyMemoryContent Bytes(ReadOnlyMemory<byte> content, string contentType)
    {
        var body = new ReadOnlyMemoryContent(content);
        body.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return body;
    }

    private string BucketUrl(string bucket)
    {
        ArgumentException.ThrowIfNullOrEmpty(bucket);
        return $"{_apiBase}/b/{Uri.EscapeDataString(bucket)}";
    }

    /// <summary>The object's URL: the name is ONE percent-encoded path segment ('/' becomes %2F).</summary>
    private Uri ObjectUri(string bucket, string name, string? query)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return new Uri($"{BucketUrl(bucket)}/o/{Uri.EscapeDataString(name)}{query}");
    }

    private static void Append(StringBuilder query, string name, string value) =>
        query.Append(query.Length == 0 ? '?' : '&').Append(name).Append('=').Append(Uri.EscapeDataString(value));

    private sealed record ObjectInsert(string Name, string ContentType);

    private sealed record ObjectsPage(List<ObjectResource>? Items, string? NextPageToken);

    private sealed record ObjectResource(
        string Name,
        string? Bucket,
        long? Size,
        string? ContentType,
        string? Md5Hash,
        string? Crc32c,
        long? Generation,
        long? Metageneration,
        DateTimeOffset? Updated)
    {
        public StoredObject ToStoredObject(string bucket) => new(
            Bucket ?? bucket,
            Name,
            Size ?? 0,
            ContentType,
            Md5Hash,
            Crc32c,
            Generation ?? 0,
            Metageneration ?? 0,
            Updated);
    }
}
