using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace ReverseImageSearch.Gcp.Auth;

/// <summary>
/// Verifies Firebase App Check tokens (the X-Firebase-AppCheck header of a callable request) as firebase-functions'
/// enforceAppCheck does: RS256, signed by a key of App Check's JWKS (cached by its Cache-Control, refetched
/// rate-limited for unknown key ids), issuer https://firebaseappcheck.googleapis.com/{projectNumber}, an audience
/// containing projects/{projectNumber}, not expired.
/// </summary>
public sealed class AppCheckVerifier
{
    public const string HeaderName = "X-Firebase-AppCheck";

    /// <summary>App Check's public signing keys.</summary>
    public static readonly Uri GoogleJwksUri = new("https://firebaseappcheck.googleapis.com/v1/jwks");

    private readonly SigningKeyCache _keys;
    private readonly JsonWebTokenHandler _handler = new();
    private readonly TimeProvider _timeProvider;
    private readonly string _issuer;
    private readonly string _audience;

    /// <param name="projectNumber">The Firebase project's number (App Check names projects by number).</param>
    /// <param name="jwksUri">Where the keys are; null = <see cref="GoogleJwksUri"/>.</param>
    public AppCheckVerifier(HttpClient httpClient, string projectNumber, Uri? jwksUri, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        ArgumentException.ThrowIfNullOrEmpty(projectNumber);
        ArgumentNullException.ThrowIfNull(timeProvider);
        _timeProvider = timeProvider;
        _issuer = "https://firebaseappcheck.googleapis.com/" + projectNumber;
        _audience = "projects/" + projectNumber;
        var cachePolicy = new FirebaseIdTokenVerifierOptions { ProjectId = projectNumber };
        _keys = new SigningKeyCache(httpClient, jwksUri ?? GoogleJwksUri, SigningKeyCache.ParseJsonWebKeySet, cachePolicy, timeProvider);
    }

    /// <summary>Returns when <paramref name="token"/> is a valid App Check token; throws <see cref="CallerAuthenticationException"/> otherwise.</summary>
    public async Task VerifyAsync(string? token, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token))
        {
            throw new CallerAuthenticationException($"The call carries no App Check token ({HeaderName}).");
        }

        JsonWebToken jwt;
        try
        {
            jwt = new JsonWebToken(token);
        }
        catch (ArgumentException e)
        {
            throw new CallerAuthenticationException("The App Check token is not a JWT.", e);
        }

        if (jwt.Alg != SecurityAlgorithms.RsaSha256 || string.IsNullOrEmpty(jwt.Kid))
        {
            throw new CallerAuthenticationException("App Check tokens are RS256 with a key id.");
        }

        var key = await _keys.FindKeyAsync(jwt.Kid, cancellationToken)
            ?? throw new CallerAuthenticationException($"The App Check token's key id {jwt.Kid} is not one of App Check's keys.");
        var result = await _handler.ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            IssuerSigningKey = key,
            ValidAlgorithms = [SecurityAlgorithms.RsaSha256],
            ValidIssuer = _issuer,
            ValidateAudience = false,
            ValidateLifetime = false,
            RequireSignedTokens = true,
        });
        if (!result.IsValid)
        {
            throw new CallerAuthenticationException("The App Check token's signature or issuer does not verify.", result.Exception);
        }

        if (!jwt.Audiences.Contains(_audience, StringComparer.Ordinal))
        {
            throw new CallerAuthenticationException($"The App Check token's audience does not include {_audience}.");
        }

        if (!jwt.TryGetPayloadValue<long>(JwtRegisteredClaimNames.Exp, out var exp) || DateTimeOffset.FromUnixTimeSeconds(exp) <= _timeProvider.GetUtcNow())
        {
            throw new CallerAuthenticationException("The App Check token has expired.");
        }
    }
}
