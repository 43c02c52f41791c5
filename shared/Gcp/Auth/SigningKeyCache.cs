using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace ReverseImageSearch.Gcp.Auth;

/// <summary>
/// Google's signing keys for a kind of token (Firebase ID tokens: securetoken's X.509 certificate map; App Check
/// tokens: a JWKS), cached for the response's max-age and fetched again early when a token names a key id the
/// cache does not know (keys rotate). Callers never cause more than one fetch per
/// <see cref="FirebaseIdTokenVerifierOptions.MinimumRefetchInterval"/>, failed or not, and share the one in flight,
/// so tokens with made-up key ids cannot make the server flood Google; when a fetch fails the keys already known
/// keep verifying.
/// </summary>
internal sealed class SigningKeyCache(
    HttpClient httpClient, Uri source, Func<string, Dictionary<string, SecurityKey>> parse, FirebaseIdTokenVerifierOptions options, TimeProvider timeProvider)
{
    /// <summary>securetoken's certificate map: key id to an X.509 certificate in PEM.</summary>
    public static Dictionary<string, SecurityKey> ParseCertificateMap(string json)
    {
        var pems = JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? throw new JsonException("the certificate map is empty");
        var keys = new Dictionary<string, SecurityKey>(StringComparer.Ordinal);
        foreach (var (keyId, pem) in pems)
        {
            keys[keyId] = new X509SecurityKey(X509Certificate2.CreateFromPem(pem), keyId);
        }

        return keys;
    }

    /// <summary>A JSON Web Key Set: the RSA keys by their kid.</summary>
    public static Dictionary<string, SecurityKey> ParseJsonWebKeySet(string json)
    {
        var keys = new Dictionary<string, SecurityKey>(StringComparer.Ordinal);
        foreach (var key in new JsonWebKeySet(json).Keys)
        {
            if (key.Kty == JsonWebAlgorithmsKeyTypes.RSA && !string.IsNullOrEmpty(key.Kid))
            {
                keys[key.Kid] = key;
            }
        }

        return keys.Count > 0 ? keys : throw new JsonException("the key set holds no RSA key");
    }

    private readonly Lock _gate = new();
    private IReadOnlyDictionary<string, SecurityKey> _keys = new Dictionary<string, SecurityKey>();
    private DateTimeOffset _expires = DateTimeOffset.MinValue;
    private DateTimeOffset _lastAttempt = DateTimeOffset.MinValue;
    private Task? _refresh;

    /// <summary>Why the last fetch failed; null after a fetch that succeeded.</summary>
    public string? LastFailure { get; private set; }

    /// <summary>The key with <paramref name="keyId"/>, or null when the keys (as last fetched) have none.</summary>
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
            using var response = await httpClient.GetAsync(source, CancellationToken.None);
            response.EnsureSuccessStatusCode();
            var keys = parse(await response.Content.ReadAsStringAsync(CancellationToken.None));

            var now = timeProvider.GetUtcNow();
            _keys = keys;
            _expires = now + (response.Headers.CacheControl?.MaxAge ?? options.DefaultCacheDuration);
            LastFailure = null;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or CryptographicException or NotSupportedException
            or ArgumentException)
        {
            LastFailure = $"{source} could not be fetched: {e.Message}";
        }
    }
}
