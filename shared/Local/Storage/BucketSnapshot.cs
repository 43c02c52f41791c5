using System.Text.Json;
using ReverseImageSearch.Core;

namespace ReverseImageSearch.Local.Storage;

/// <summary>What the watcher last announced for one object.</summary>
internal sealed record SnapshotEntry(long Size, DateTime LastWriteTimeUtc, string Md5Hash, long Generation);

/// <summary>The bucket folder as last announced, persisted so changes made while stopped are found at start.</summary>
internal sealed class BucketSnapshot(string path)
{
    public string Path { get; } = path;

    public Dictionary<string, SnapshotEntry> Load()
    {
        if (!File.Exists(Path))
        {
            return new Dictionary<string, SnapshotEntry>(StringComparer.Ordinal);
        }

        var loaded = JsonSerializer.Deserialize<Dictionary<string, SnapshotEntry>>(File.ReadAllBytes(Path), CoreJson.Options);
        return new Dictionary<string, SnapshotEntry>(loaded ?? [], StringComparer.Ordinal);
    }

    public void Save(IReadOnlyDictionary<string, SnapshotEntry> entries) =>
        AtomicFile.WriteAllBytes(Path, JsonSerializer.SerializeToUtf8Bytes(entries, CoreJson.Options));
}
