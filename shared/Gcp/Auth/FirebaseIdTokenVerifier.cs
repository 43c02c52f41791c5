using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Gcp.Auth;

/// <summary>
/// Verifies Firebase ID tokens the way the Firebase docs prescribe for third-party JWT libraries:
/// RS256 signed by one of Google's securetoken certificates, then the claims rules. In emulator
/// mode it also accepts the Auth emulator's unsigned tokens, checking the same claims.
/// </summary>
public sealed class FirebaseIdTokenVerifier : ICallerAuthenticator
{
    private const int MaxSubjectLength = 128;

    private readonly FirebaseIdTokenVerifierOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly SigningKeyCache _certificates;
    private readonly JsonWebTokenHandler _handler = new();
    private readonly string _issuer;

    public FirebaseIdTokenVerifier(HttpClient httpClient, FirebaseIdTokenVerifierOptions options, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        _options = options;
        _timeProvider = timeProvider;
        _certificates = new SigningKeyCache(httpClient, options.CertificatesUri, SigningKeyCache.ParseCertificateMap, options, timeProvider);
        _issuer = "https://securetoken.google.com/" + options.ProjectId;
    }

    public async Task<CallerIdentity> AuthenticateAsync(string bearerToken, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(bearerToken);
        JsonWebToken token;
        try
        {
            token = new JsonWebToken(bearerToken);
        }
        catch (ArgumentException e)
        {
            throw new CallerAuthenticationException("The ID token is not a JWT.", e);
        }

        if (token.Alg == "none")
        {
            CheckEmulatorToken(bearerToken);
        }
        else
        {
            await CheckSignatureAsync(token, cancellationToken);
        }

        return CheckClaims(token);
    }

    private void CheckEmulatorToken(string rawToken)
    {
        if (!_options.AcceptEmulatorTokens)
        {
            throw new CallerAuthenticationException("Unsigned ID tokens are accepted only with the Auth emulator.");
        }

        if (!rawToken.EndsWith('.'))
        {
            throw new CallerAuthenticationException("An unsigned ID token must have an empty signature.");
        }
    }

    private async Task CheckSignatureAsync(JsonWebToken token, CancellationToken cancellationToken)
    {
        if (token.Alg != SecurityAlgorithms.RsaSha256)
        {
            throw new CallerAuthenticationException($"ID tokens are signed with RS256, not {token.Alg}.");
        }

        if (string.IsNullOrEmpty(token.Kid))
        {
            throw new CallerAuthenticationException("The ID token names no key id.");
        }

        var key = await _certificates.FindKeyAsync(token.Kid, cancellationToken)
            ?? throw new CallerAuthenticationException(_certificates.LastFailure is { } failure
                ? $"The ID token's key id {token.Kid} is not one of the known certificates ({failure})."
                : $"The ID token's key id {token.Kid} is not one of Google's certificates.");

        // The library checks only algorithm and signature here; the claims follow Firebase's own rules below.
        var result = await _handler.ValidateTokenAsync(token, new TokenValidationParameters
        {
            IssuerSigningKey = key,
            ValidAlgorithms = [SecurityAlgorithms.RsaSha256],
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = false,
            RequireExpirationTime = false,
            RequireSignedTokens = true,
        });
        if (!result.IsValid)
        {
            throw new CallerAuthenticationException("The ID token's signature does not verify.", result.Exception);
        }
    }

    private CallerIdentity CheckClaims(JsonWebToken token)
    {
        if (!token.Audiences.SequenceEqual([_options.ProjectId]))
        {
            throw new CallerAuthenticationException($"The ID token's audience is not {_options.ProjectId}.");
        }

        if (token.Issuer != _issuer)
        {
            throw new CallerAuthenticationException($"The ID token's issuer is not {_issuer}.");
        }

        var now = _timeProvider.GetUtcNow();
        if (ReadTime(token, JwtRegisteredClaimNames.Exp) is not { } expires || expires <= now)
        {
            throw new CallerAuthenticationException("The ID token has expired.");
        }

        CheckInPast(token, JwtRegisteredClaimNames.Iat, now);
        CheckInPast(token, "auth_time", now);

        var subject = token.Subject;
        if (string.IsNullOrEmpty(subject) || subject.Length > MaxSubjectLength)
        {
            throw new CallerAuthenticationException($"The ID token's subject must be 1 to {MaxSubjectLength} characters.");
        }

        return new CallerIdentity(subject, SignInProvider(token));
    }

    private void CheckInPast(JsonWebToken token, string claim, DateTimeOffset now)
    {
        if (ReadTime(token, claim) is not { } time || time > now + _options.ClockSkew)
        {
            throw new CallerAuthenticationException($"The ID token's {claim} must be a time in the past.");
        }
    }

    private static DateTimeOffset? ReadTime(JsonWebToken token, string claim) =>
        token.TryGetPayloadValue<long>(claim, out var seconds) ? DateTimeOffset.FromUnixTimeSeconds(seconds) : null;

    private static string? SignInProvider(JsonWebToken token)
    {
        if (!token.TryGetPayloadValue<JsonElement>("firebase", out var firebase) || firebase.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        return firebase.TryGetProperty("sign_in_provider", out var provider) && provider.ValueKind == JsonValueKind.String
            ? provider.GetString()
            : null;
    }
}
