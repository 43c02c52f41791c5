using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Gcp.Http;

namespace ReverseImageSearch.Gcp.Firestore;

/// <summary>
/// <see cref="IDocumentStore"/> over the Firestore REST API v1, database (default). Transactions: beginTransaction,
/// reads by batchGet with the transaction, commit; the body is run again on 409 ABORTED; rollback when it throws.
/// </summary>
public sealed class FirestoreDocumentStore : IDocumentStore
{
    private readonly GoogleRestClient _client;
    private readonly GcpAdapterOptions _options;
    private readonly string _baseUrl;

    public FirestoreDocumentStore(GoogleRestClient client, GcpEndpoints endpoints, GcpAdapterOptions options, string projectId)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentException.ThrowIfNullOrEmpty(projectId);
        _client = client;
        _options = options;
        _baseUrl = endpoints.EffectiveFirestoreBase.ToString().TrimEnd('/');
        DatabaseName = $"projects/{projectId}/databases/(default)";
    }

    /// <summary>projects/{p}/databases/(default).</summary>
    public string DatabaseName { get; }

    public string DocumentsRoot => DatabaseName + "/documents";

    public Task<DocumentSnapshot?> GetAsync(string path, CancellationToken cancellationToken = default) =>
        GetAsync(path, transaction: null, cancellationToken);

    public async Task SetAsync(string path, IReadOnlyDictionary<string, object?> fields, SetMode mode, CancellationToken cancellationToken = default)
    {
        var write = BuildWrite(path, fields, mode);
        if (mode == SetMode.Merge && write.Mask!.Count == 0)
        {
            // Nothing to write: an empty merge still creates the document, which PATCH without a mask cannot express.
            await CommitAsync([write.ToJson()], transaction: null, cancellationToken);
            return;
        }

        var query = new StringBuilder();
        if (mode == SetMode.Merge)
        {
            foreach (var fieldPath in write.Mask!)
            {
                AppendQuery(query, "updateMask.fieldPaths", fieldPath);
            }
        }

        await _client.SendJsonAsync(HttpMethod.Patch, DocumentUri(path, query), new JsonObject { ["fields"] = write.Fields }, cancellationToken);
    }

    public async Task<bool> CreateAsync(string path, IReadOnlyDictionary<string, object?> fields, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var query = new StringBuilder();
        AppendQuery(query, "currentDocument.exists", "false");
        try
        {
            await _client.SendJsonAsync(HttpMethod.Patch, DocumentUri(path, query), new JsonObject { ["fields"] = FirestoreValues.EncodeFields(fields) }, cancellationToken);
            return true;
        }
        catch (ServiceException e) when (IsPreconditionFailure(e))
        {
            return false;
        }
    }

    public async Task DeleteAsync(string path, CancellationToken cancellationToken = default)
    {
        try
        {
            await _client.SendJsonAsync(HttpMethod.Delete, DocumentUri(path, null), null, cancellationToken);
        }
        catch (ServiceException e) when (e.IsNotFound)
        {
            // Deleting a missing document is not an error.
        }
    }

    public async Task<T> RunTransactionAsync<T>(Func<IDocumentTransaction, CancellationToken, Task<T>> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        string? previous = null;
        for (var attempt = 1; ; attempt++)
        {
            var readWrite = new JsonObject();
            if (previous is not null)
            {
                readWrite["retryTransaction"] = previous;
            }

            var begun = await _client.SendJsonAsync<BeginTransactionResponse>(
                HttpMethod.Post,
                new Uri($"{_baseUrl}/{DocumentsRoot}:beginTransaction"),
                new JsonObject { ["options"] = new JsonObject { ["readWrite"] = readWrite } },
                cancellationToken);
            var transaction = new Transaction(this, begun.Transaction);
            T result;
            try
            {
                result = await body(transaction, cancellationToken);
                await CommitAsync(transaction.Writes, begun.Transaction, cancellationToken);
                return result;
            }
            catch (ServiceException e) when (IsContention(e) && attempt < _options.TransactionMaxAttempts)
            {
                // Release whatever the aborted attempt still holds (the emulator keeps its locks until then).
                await RollbackQuietlyAsync(begun.Transaction);
                previous = begun.Transaction;
            }
            catch (Exception)
            {
                await RollbackQuietlyAsync(begun.Transaction);
                throw;
            }

            await Task.Delay(Backoff(attempt), cancellationToken);
        }
    }

    internal static bool IsContention(ServiceException e) => e.HttpStatus == 409 && e.Status == "ABORTED";

    internal static bool IsPreconditionFailure(ServiceException e) =>
        e.HttpStatus is 409 or 412 || (e.HttpStatus == 400 && e.Status == "FAILED_PRECONDITION");

    private TimeSpan Backoff(int attempt)
    {
        var ms = _options.TransactionBaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 8));
        return TimeSpan.FromMilliseconds(Math.Min(ms, 5000) * (0.5 + Random.Shared.NextDouble()));
    }

    private async Task<DocumentSnapshot?> GetAsync(string path, string? transaction, CancellationToken cancellationToken)
    {
        if (transaction is not null)
        {
            return await GetInTransactionAsync(path, transaction, cancellationToken);
        }

        try
        {
            using var doc = await _client.SendJsonAsync<JsonDocument>(HttpMethod.Get, DocumentUri(path, null), null, cancellationToken);
            return ToSnapshot(path, doc.RootElement);
        }
        catch (ServiceException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// A read inside a transaction: documents:batchGet with the transaction (GET ?transaction= hangs on the
    /// Firestore emulator, gcloud 528; batchGet behaves the same on both). The answer is an array of found/missing.
    /// </summary>
    private async Task<DocumentSnapshot?> GetInTransactionAsync(string path, string transaction, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["documents"] = new JsonArray(DocumentName(path)),
            ["transaction"] = transaction,
        };
        using var answer = await _client.SendJsonAsync<JsonDocument>(HttpMethod.Post, new Uri($"{_baseUrl}/{DocumentsRoot}:batchGet"), body, cancellationToken);
        foreach (var item in answer.RootElement.EnumerateArray())
        {
            if (item.TryGetProperty("found", out var found))
            {
                return ToSnapshot(path, found);
            }
        }

        return null;
    }

    private static DocumentSnapshot ToSnapshot(string path, JsonElement document)
    {
        var fields = document.TryGetProperty("fields", out var f) ? FirestoreValues.DecodeFields(f) : [];
        DateTimeOffset? updateTime = document.TryGetProperty("updateTime", out var u) && u.ValueKind == JsonValueKind.String
            ? DateTimeOffset.Parse(u.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal)
            : null;
        return new DocumentSnapshot(path, fields, updateTime);
    }

    private async Task CommitAsync(IReadOnlyList<JsonObject> writes, string? transaction, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["writes"] = new JsonArray([.. writes]) };
        if (transaction is not null)
        {
            body["transaction"] = transaction;
        }

        await _client.SendJsonAsync(HttpMethod.Post, new Uri($"{_baseUrl}/{DocumentsRoot}:commit"), body, cancellationToken);
    }

    private async Task RollbackQuietlyAsync(string transaction)
    {
        try
        {
            await _client.SendJsonAsync(
                HttpMethod.Post,
                new Uri($"{_baseUrl}/{DocumentsRoot}:rollback"),
                new JsonObject { ["transaction"] = transaction },
                CancellationToken.None);
        }
        catch (ServiceException)
        {
            // The transaction expires on its own; the body's exception is what matters.
        }
        catch (HttpRequestException)
        {
        }
    }

    internal string DocumentName(string path) => $"{DocumentsRoot}/{NormalizePath(path)}";

    private Uri DocumentUri(string path, StringBuilder? query)
    {
        var escaped = string.Join('/', NormalizePath(path).Split('/').Select(Uri.EscapeDataString));
        return new Uri($"{_baseUrl}/{DocumentsRoot}/{escaped}{query}");
    }

    private static string NormalizePath(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var trimmed = path.Trim('/');
        var segments = trimmed.Split('/');
        if (segments.Length % 2 != 0 || segments.Any(s => s.Length == 0))
        {
            throw new ArgumentException($"'{path}' is not a document path (collection/document[/collection/document...]).", nameof(path));
        }

        return trimmed;
    }

    private static void AppendQuery(StringBuilder query, string name, string value) =>
        query.Append(query.Length == 0 ? '?' : '&').Append(name).Append('=').Append(Uri.EscapeDataString(value));

    private PendingWrite BuildWrite(string path, IReadOnlyDictionary<string, object?> fields, SetMode mode)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var encoded = new JsonObject();
        List<string>? mask = mode == SetMode.Merge ? [] : null;
        foreach (var (key, value) in fields)
        {
            mask?.Add(FirestoreValues.QuoteFieldPath(key));
            if (value is FieldDelete)
            {
                if (mode != SetMode.Merge)
                {
                    throw new ArgumentException($"FieldDelete.Value for '{key}' needs SetMode.Merge.", nameof(fields));
                }

                continue;
            }

            encoded[key] = FirestoreValues.Encode(value);
        }

        return new PendingWrite(DocumentName(path), encoded, mask);
    }

    private sealed record PendingWrite(string Name, JsonObject Fields, List<string>? Mask)
    {
        public JsonObject ToJson()
        {
            var write = new JsonObject { ["update"] = new JsonObject { ["name"] = Name, ["fields"] = Fields } };
            if (Mask is not null)
            {
                write["updateMask"] = new JsonObject { ["fieldPaths"] = new JsonArray([.. Mask.Select(m => (JsonNode)m)]) };
            }

            return write;
        }
    }

    private sealed record BeginTransactionResponse(string Transaction);

    private sealed class Transaction(FirestoreDocumentStore store, string id) : IDocumentTransaction
    {
        private readonly List<JsonObject> _writes = [];

        public IReadOnlyList<JsonObject> Writes => _writes;

        public Task<DocumentSnapshot?> GetAsync(string path, CancellationToken cancellationToken = default)
        {
            if (_writes.Count > 0)
            {
                throw new InvalidOperationException("A transaction must do all its reads before its writes.");
            }

            return store.GetAsync(path, id, cancellationToken);
        }

        public void Set(string path, IReadOnlyDictionary<string, object?> fields, SetMode mode) =>
            _writes.Add(store.BuildWrite(path, fields, mode).ToJson());

        public void Delete(string path) => _writes.Add(new JsonObject { ["delete"] = store.DocumentName(path) });
    }
}
