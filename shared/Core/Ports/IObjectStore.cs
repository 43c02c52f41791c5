namespace ReverseImageSearch.Core.Ports;

/// <summary>Metadata of one stored object, as Cloud Storage reports it.</summary>
/// <param name="Md5Hash">Base64 MD5 of the content; null where the store cannot give one (composite objects).</param>
/// <param name="Generation">Changes whenever the content is replaced; orders events for the same name.</param>
public sealed record StoredObject(
    string Bucket,
    string Name,
    long Size,
    string? ContentType,
    string? Md5Hash,
    string? Crc32c,
    long Generation,
    long Metageneration,
    DateTimeOffset? Updated);

/// <summary>A bucket of named objects (Cloud Storage, or a folder on disk).</summary>
public interface IObjectStore
{
    /// <summary>Every object whose name starts with <paramref name="prefix"/>, paging internally.</summary>
    IAsyncEnumerable<StoredObject> ListAsync(string bucket, string? prefix, CancellationToken cancellationToken = default);

    /// <summary>The object's metadata, or null when it does not exist.</summary>
    Task<StoredObject?> GetMetadataAsync(string bucket, string name, CancellationToken cancellationToken = default);

    /// <summary>The object's content. Throws <see cref="ObjectNotFoundException"/> when it does not exist.</summary>
    Task<byte[]> ReadAsync(string bucket, string name, CancellationToken cancellationToken = default);

    /// <summary>Creates or replaces the object.</summary>
    Task<StoredObject> WriteAsync(string bucket, string name, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken = default);

    /// <summary>Deletes the object; false when it did not exist.</summary>
    Task<bool> DeleteAsync(string bucket, string name, CancellationToken cancellationToken = default);
}

public sealed class ObjectNotFoundException(string bucket, string name)
    : Exception($"Object gs://{bucket}/{name} does not exist.")
{
    public string Bucket { get; } = bucket;
    public string Name { get; } = name;
}
