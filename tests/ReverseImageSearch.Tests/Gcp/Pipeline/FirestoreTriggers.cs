using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Proto = ReverseImageSearch.Gcp.Protos.Firestore;

namespace ReverseImageSearch.Tests.Gcp.Pipeline;

/// <summary>
/// Plays Eventarc for Firestore: watches one document in the emulator (polling its updateTime) and, for every
/// change of an existing document, posts google.cloud.firestore.document.v1.updated with DocumentEventData in
/// application/protobuf (old_value, value, update_mask) to the function, as a gcloud-deployed trigger receives it.
/// Creations and deletions are not announced: the extension's trigger listens to updates only.
/// </summary>
public sealed class FirestoreTriggers : IAsyncDisposable
{
    private readonly HttpClient _http;
    private readonly string _emulatorHost;
    private readonly string _projectId;
    private readonly string _documentPath;
    private readonly string _function;
    private readonly Eventarc _eventarc;
    private readonly CancellationTokenSource _stop = new();
    private int _disposed;
    private readonly Task _loop;

    public FirestoreTriggers(HttpClient http, string emulatorHost, string projectId, string documentPath, string function, Eventarc eventarc, TimeSpan interval)
    {
        _http = http;
        _emulatorHost = emulatorHost;
        _projectId = projectId;
        _documentPath = documentPath;
        _function = function;
        _eventarc = eventarc;
        _loop = Task.Run(() => WatchAsync(interval, _stop.Token));
    }

    public ConcurrentQueue<string> Problems { get; } = new();

    /// <summary>Events posted: the update masks, in order.</summary>
    public ConcurrentQueue<string[]> Announced { get; } = new();

    public string DatabaseName => $"projects/{_projectId}/databases/(default)";

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private async Task WatchAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        JsonElement? previous = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var current = await ReadAsync(cancellationToken);
                if (previous is { } before && current is { } after
                    && after.GetProperty("updateTime").GetString() != before.GetProperty("updateTime").GetString())
                {
                    await AnnounceAsync(before, after, cancellationToken);
                }

                previous = current;
            }
            catch (HttpRequestException e)
            {
                Problems.Enqueue($"watching {_documentPath}: {e.Message}");
            }

            await Task.Delay(interval, cancellationToken);
        }
    }

    private async Task<JsonElement?> ReadAsync(CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://{_emulatorHost}/v1/{DatabaseName}/documents/{_documentPath}"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "owner");
        using var response = await _http.SendAsync(request, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccessStatusCode();
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
        return document.RootElement.Clone();
    }

    private async Task AnnounceAsync(JsonElement before, JsonElement after, CancellationToken cancellationToken)
    {
        var oldFields = Fields(before);
        var newFields = Fields(after);
        var mask = oldFields.Keys.Union(newFields.Keys)
            .Where(k => !oldFields.TryGetValue(k, out var o) || !newFields.TryGetValue(k, out var n) || o.GetRawText() != n.GetRawText())
            .Order(StringComparer.Ordinal)
            .ToArray();
        var data = new Proto.DocumentEventData
        {
            OldValue = Document(before),
            Value = Document(after),
            UpdateMask = new Proto.DocumentMask { FieldPaths = { mask } },
        };
        Announced.Enqueue(mask);
        var status = await _eventarc.PostAsync(
            _function,
            "google.cloud.firestore.document.v1.updated",
            $"//firestore.googleapis.com/{DatabaseName}",
            $"documents/{_documentPath}",
            new Dictionary<string, string>
            {
                ["location"] = "nam5",
                ["project"] = _projectId,
                ["database"] = "(default)",
                ["namespace"] = "(default)",
                ["document"] = _documentPath,
            },
            data.ToByteArray(),
            "application/protobuf",
            cancellationToken);
        if (status / 100 != 2)
        {
            Problems.Enqueue($"{_function} answered {status} to the update of {_documentPath} ({string.Join(",", mask)})");
        }
    }

    private static Dictionary<string, JsonElement> Fields(JsonElement document) =>
        document.TryGetProperty("fields", out var fields)
            ? fields.EnumerateObject().ToDictionary(f => f.Name, f => f.Value, StringComparer.Ordinal)
            : new Dictionary<string, JsonElement>(StringComparer.Ordinal);

    private static Proto.Document Document(JsonElement json)
    {
        var document = new Proto.Document
        {
            Name = json.GetProperty("name").GetString()!,
            CreateTime = Time(json.GetProperty("createTime").GetString()!),
            UpdateTime = Time(json.GetProperty("updateTime").GetString()!),
        };
        foreach (var (name, value) in Fields(json))
        {
            document.Fields[name] = Value(value);
        }

        return document;
    }

    /// <summary>A Firestore REST value (typed JSON) as the protobuf Value of DocumentEventData.</summary>
    private static Proto.Value Value(JsonElement json)
    {
        var typed = json.EnumerateObject().Single();
        var v = typed.Value;
        return typed.Name switch
        {
            "nullValue" => new Proto.Value { NullValue = NullValue.NullValue },
            "booleanValue" => new Proto.Value { BooleanValue = v.GetBoolean() },
            "integerValue" => new Proto.Value { IntegerValue = long.Parse(v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText(), CultureInfo.InvariantCulture) },
            "doubleValue" => new Proto.Value { DoubleValue = v.ValueKind == JsonValueKind.Number ? v.GetDouble() : double.Parse(v.GetString()!, CultureInfo.InvariantCulture) },
            "timestampValue" => new Proto.Value { TimestampValue = Time(v.GetString()!) },
            "stringValue" => new Proto.Value { StringValue = v.GetString()! },
            "bytesValue" => new Proto.Value { BytesValue = ByteString.FromBase64(v.GetString()!) },
            "referenceValue" => new Proto.Value { ReferenceValue = v.GetString()! },
            "geoPointValue" => new Proto.Value
            {
                GeoPointValue = new Proto.LatLng
                {
                    Latitude = v.TryGetProperty("latitude", out var lat) ? lat.GetDouble() : 0,
                    Longitude = v.TryGetProperty("longitude", out var lng) ? lng.GetDouble() : 0,
                },
            },
            "arrayValue" => new Proto.Value
            {
                ArrayValue = new Proto.ArrayValue { Values = { v.TryGetProperty("values", out var items) ? items.EnumerateArray().Select(Value) : [] } },
            },
            "mapValue" => Map(v),
            var other => throw new FormatException($"Unknown Firestore value type {other}."),
        };
    }

    private static Proto.Value Map(JsonElement map)
    {
        var value = new Proto.MapValue();
        if (map.TryGetProperty("fields", out var fields))
        {
            foreach (var field in fields.EnumerateObject())
            {
                value.Fields[field.Name] = Value(field.Value);
            }
        }

        return new Proto.Value { MapValue = value };
    }

    private static Timestamp Time(string rfc3339) =>
        Timestamp.FromDateTimeOffset(DateTimeOffset.Parse(rfc3339, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal));
}
