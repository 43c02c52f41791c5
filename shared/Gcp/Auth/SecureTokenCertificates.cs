using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace ReverseImageSearch.Gcp.Auth;

/// <summary>
/// Google's signing certificates for Firebase ID tokens, cached for the response's max-age and fetched again
/// early when a token names a key id the cache does not know (keys rotate). Callers never cause more than one
/// fetch per <see cref="FirebaseIdTokenVerifierOptions.MinimumRefetchInterval"/>, failed or not, and share the
/// one in flight, so tokens with made-up key ids cannot make the server flood Google; when a fetch fails the
/// keys already known keep verifying.
/// </summary>
internal sealed class SecureTokenCertificates(HttpClient httpClient, FirebaseIdTokenVerifierOptions options, TimeProvider timeProvider)
{
    private readonly Lock _gate = new();
    private IReadOnlyDictionary<string, SecurityKey> _keys = new Dictionary<string, SecurityKey>();
    private DateTimeOffset _expires = DateTimeOffset.MinValue;
    private DateTimeOffset _lastAttempt = DateTimeOffset.MinValue;
    private Task? _refresh;

    /// <summary>Why the last fetch failed; null after a fetch that succeeded.</summary>
    public string? LastFailure { get; private set; }

    /// <summary>The key with <paramref name="keyId"/>, or null when Google's certificates (as last fetched) have none.</summary>
    public async Task<SecurityKey?> FindKeyAsync(string keyId, CancellationToken cancellationToken)
    {
        if (timeProvider.GetUtcNow() < _expires && _keys.TryGetValue(keyId, out var cached))
        {
            return cached;
        }

        if (RefreshIfDue() is { } refresh)
        {
            await refresh.WaitAsync(cancellationToken);
        }

        return _keys.GetValueOrDefault(keyId);
    }

    private Task? RefreshIfDue()
    {
        lock (_gate)
        {
            if (_refresh is { IsCompleted: false })
            {
                return _refresh;
            }

            var now = timeProvider.GetUtcNow();
            if (now - _lastAttempt < options.MinimumRefetchInterval)
            {
                return null;
            }

            _lastAttempt = now;
            _refresh = RefreshAsync();
            return _refresh;
        }
    }

    // Shared by every waiting caller, so no caller's cancellation stops it; the HttpClient's timeout bounds it.
    private async Task RefreshAsync()
    {
        try
        {
            using var response = await httpClient.GetAsync(options.CertificatesUri, CancellationToken.None);
            response.EnsureSuccessStatusCode();
            var pems = await response.Content.ReadFromJsonAsync<Dictionary<string, string>>(CancellationToken.None)
                ?? throw new JsonException("the certificate map is empty");
            var keys = new Dictionary<string, SecurityKey>(StringComparer.Ordinal);
            foreach (var (keyId, pem) in pems)
            {
                keys[keyId] = new X509SecurityKey(X509Certificate2.CreateFromPem(pem), keyId);
            }

            var now = timeProvider.GetUtcNow();
            _keys = keys;
            _expires = now + (response.Headers.CacheControl?.MaxAge ?? options.DefaultCacheDuration);
            LastFailure = null;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or CryptographicException or NotSupportedException)
        {
            LastFailure = $"{options.CertificatesUri} could not be fetched: {e.Message}";
        }
    }
}
