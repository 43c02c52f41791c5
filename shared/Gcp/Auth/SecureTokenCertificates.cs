using System.Net.Http.Json;
using System.Security.Cryptography.X509Certificates;
using Microsoft.IdentityModel.Tokens;

namespace ReverseImageSearch.Gcp.Auth;

/// <summary>
/// Google's signing certificates for Firebase ID tokens, cached for the response's max-age and
/// fetched again early when a token names a key id the cache does not know (keys rotate).
/// </summary>
internal sealed class SecureTokenCertificates(HttpClient httpClient, FirebaseIdTokenVerifierOptions options, TimeProvider timeProvider) : IDisposable
{
    private readonly SemaphoreSlim _fetchLock = new(1, 1);
    private IReadOnlyDictionary<string, SecurityKey> _keys = new Dictionary<string, SecurityKey>();
    private DateTimeOffset _expires = DateTimeOffset.MinValue;
    private DateTimeOffset _lastFetch = DateTimeOffset.MinValue;

    public async Task<SecurityKey?> FindKeyAsync(string keyId, CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow();
        if (now < _expires && _keys.TryGetValue(keyId, out var cached))
        {
            return cached;
        }

        await _fetchLock.WaitAsync(cancellationToken);
        try
        {
            now = timeProvider.GetUtcNow();
            var stale = now >= _expires;
            var unknownKeyMayRefetch = !_keys.ContainsKey(keyId) && now - _lastFetch >= options.MinimumRefetchInterval;
            if (stale || unknownKeyMayRefetch)
            {
                await FetchAsync(cancellationToken);
            }

            return _keys.GetValueOrDefault(keyId);
        }
        finally
        {
            _fetchLock.Release();
        }
    }

    public void Dispose() => _fetchLock.Dispose();

    private async Task FetchAsync(CancellationToken cancellationToken)
    {
        using var response = await httpClient.GetAsync(options.CertificatesUri, cancellationToken);
        response.EnsureSuccessStatusCode();
        var pems = await response.Content.ReadFromJsonAsync<Dictionary<string, string>>(cancellationToken)
            ?? throw new InvalidOperationException($"{options.CertificatesUri} answered an empty certificate map.");
        var keys = new Dictionary<string, SecurityKey>(StringComparer.Ordinal);
        foreach (var (keyId, pem) in pems)
        {
            keys[keyId] = new X509SecurityKey(X509Certificate2.CreateFromPem(pem), keyId);
        }

        var now = timeProvider.GetUtcNow();
        _keys = keys;
        _lastFetch = now;
        _expires = now + (response.Headers.CacheControl?.MaxAge ?? options.DefaultCacheDuration);
    }
}
