using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Gcp.Auth;

namespace ReverseImageSearch.Tests.Gcp.Hosting;

public sealed class FirebaseIdTokenVerifierTests : IDisposable
{
    private const string ProjectId = "demo-project";
    private const string KeyId = "key-1";
    private const string Issuer = "https://securetoken.google.com/" + ProjectId;

    private readonly RSA _rsa = RSA.Create(2048);
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private WebApplication _certificateServer = null!;
    private Uri _certificatesUri = null!;
    private Uri _failingUri = null!;
    private Uri _flakyUri = null!;
    private int _fetches;
    private int _failedFetches;
    private int _flakyFetches;
    private volatile bool _failCertificates;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task StartCertificateServer()
    {
        using var certificate = new CertificateRequest("CN=securetoken test", _rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var map = new JsonObject { [KeyId] = certificate.ExportCertificatePem() }.ToJsonString();

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _certificateServer = builder.Build();
        _certificateServer.MapGet("/certs", (HttpContext context) =>
        {
            Interlocked.Increment(ref _fetches);
            context.Response.Headers.CacheControl = "public, max-age=3600, must-revalidate, no-transform";
            return Results.Text(map, "application/json");
        });
        _certificateServer.MapGet("/failing", () =>
        {
            Interlocked.Increment(ref _failedFetches);
            return Results.StatusCode(StatusCodes.Status503ServiceUnavailable);
        });
        _certificateServer.MapGet("/flaky", (HttpContext context) =>
        {
            Interlocked.Increment(ref _flakyFetches);
            if (_failCertificates)
            {
                return Results.StatusCode(StatusCodes.Status503ServiceUnavailable);
            }

            context.Response.Headers.CacheControl = "public, max-age=3600";
            return Results.Text(map, "application/json");
        });
        await _certificateServer.StartAsync();
        _certificatesUri = new Uri(new Uri(_certificateServer.Urls.Single()), "/certs");
        _failingUri = new Uri(_certificatesUri, "/failing");
        _flakyUri = new Uri(_certificatesUri, "/flaky");
        _http = new HttpClient();
    }

    [OneTimeTearDown]
    public async Task StopCertificateServer()
    {
        _http.Dispose();
        await _certificateServer.DisposeAsync();
    }

    [SetUp]
    public void ResetFetchCount() => (_fetches, _failedFetches, _flakyFetches) = (0, 0, 0);

    public void Dispose() => _rsa.Dispose();

    [Test]
    public async Task ValidTokenGivesTheCaller()
    {
        var verifier = Verifier();
        var identity = await verifier.AuthenticateAsync(Signed(Claims()), CancellationToken.None);
        Assert.That(identity, Is.EqualTo(new CallerIdentity("user-123", "password")));
    }

    [Test]
    public async Task CertificatesAreCachedForTheirMaxAge()
    {
        var verifier = Verifier();
        await verifier.AuthenticateAsync(Signed(Claims()), CancellationToken.None);
        _clock.Advance(TimeSpan.FromMinutes(59));
        await verifier.AuthenticateAsync(Signed(Claims()), CancellationToken.None);
        Assert.That(_fetches, Is.EqualTo(1));

        _clock.Advance(TimeSpan.FromMinutes(2));
        await verifier.AuthenticateAsync(Signed(Claims()), CancellationToken.None);
        Assert.That(_fetches, Is.EqualTo(2));
    }

    [Test]
    public async Task UnknownKeyIdRefetchesAtMostOncePerIntervalThenFails()
    {
        var verifier = Verifier();
        await verifier.AuthenticateAsync(Signed(Claims()), CancellationToken.None);
        _clock.Advance(TimeSpan.FromMinutes(2));

        Assert.ThrowsAsync<CallerAuthenticationException>(() => verifier.AuthenticateAsync(Signed(Claims(), keyId: "rotated-key"), CancellationToken.None));
        Assert.That(_fetches, Is.EqualTo(2), "an unknown kid fetches the certificates again");

        Assert.ThrowsAsync<CallerAuthenticationException>(() => verifier.AuthenticateAsync(Signed(Claims(), keyId: "another-key"), CancellationToken.None));
        Assert.That(_fetches, Is.EqualTo(2), "refetching is rate-limited");
    }

    [Test]
    public async Task UnknownKeyIdsFromManyConcurrentCallersShareOneRefetch()
    {
        var verifier = Verifier();
        await verifier.AuthenticateAsync(Signed(Claims()), CancellationToken.None);
        _clock.Advance(TimeSpan.FromMinutes(2));

        var junk = Enumerable.Range(0, 20).Select(i => Signed(Claims(), keyId: $"junk-{i}")).ToArray();
        var outcomes = await Task.WhenAll(junk.Select(token => Task.Run(() => Rejection(verifier, token))));
        Assert.That(outcomes, Is.All.InstanceOf<CallerAuthenticationException>());
        Assert.That(_fetches, Is.EqualTo(2), "twenty junk kids at once cause one refetch between them");
    }

    [Test]
    public async Task UnreachableCertificatesWithoutCachedKeysRejectTheTokenAndAreNotAskedAgainAtOnce()
    {
        var verifier = Verifier(certificatesUri: _failingUri);
        for (var i = 0; i < 5; i++)
        {
            Assert.That(await Rejection(verifier, Signed(Claims(), keyId: $"junk-{i}")), Is.InstanceOf<CallerAuthenticationException>());
        }

        Assert.That(_failedFetches, Is.EqualTo(1), "a failed fetch is rate-limited like a successful one");
        _clock.Advance(TimeSpan.FromMinutes(2));
        Assert.That(await Rejection(verifier, Signed(Claims())), Is.InstanceOf<CallerAuthenticationException>());
        Assert.That(_failedFetches, Is.EqualTo(2));
    }

    [Test]
    public async Task AFailedRefreshKeepsUsingTheCachedKeys()
    {
        _failCertificates = false;
        var verifier = Verifier(certificatesUri: _flakyUri);
        await verifier.AuthenticateAsync(Signed(Claims()), CancellationToken.None);
        _failCertificates = true;

        _clock.Advance(TimeSpan.FromMinutes(61));
        var identity = await verifier.AuthenticateAsync(Signed(Claims()), CancellationToken.None);
        Assert.That(identity.Uid, Is.EqualTo("user-123"), "expired cache, refresh failed: the known keys still verify");
        Assert.That(await Rejection(verifier, Signed(Claims(), keyId: "junk")), Is.InstanceOf<CallerAuthenticationException>());
        Assert.That(_flakyFetches, Is.EqualTo(2), "one refresh attempt, not one per token");
    }

    [TestCase("exp", -1, null, TestName = "ExpiredTokenIsRejected")]
    [TestCase("iat", 600, null, TestName = "FutureIssuedAtIsRejected")]
    [TestCase("auth_time", 600, null, TestName = "FutureAuthTimeIsRejected")]
    [TestCase("aud", 0, "other-project", TestName = "WrongAudienceIsRejected")]
    [TestCase("iss", 0, "https://securetoken.google.com/other-project", TestName = "WrongIssuerIsRejected")]
    [TestCase("sub", 0, "", TestName = "EmptySubjectIsRejected")]
    [TestCase("sub", 0, "129", TestName = "SubjectOver128CharactersIsRejected")]
    public void TokenBreakingAClaimsRuleIsRejected(string claim, int secondsFromNow, string? text)
    {
        var verifier = Verifier();
        var claims = Claims();
        claims[claim] = text switch
        {
            null => Seconds(secondsFromNow),
            "129" => new string('u', 129),
            _ => text,
        };
        Assert.ThrowsAsync<CallerAuthenticationException>(() => verifier.AuthenticateAsync(Signed(claims), CancellationToken.None));
    }

    [Test]
    public async Task SmallClockSkewAndLongestSubjectAreAccepted()
    {
        var verifier = Verifier();
        var claims = Claims();
        claims["iat"] = Seconds(120);
        claims["sub"] = new string('u', 128);
        var identity = await verifier.AuthenticateAsync(Signed(claims), CancellationToken.None);
        Assert.That(identity.Uid, Has.Length.EqualTo(128));
    }

    [Test]
    public void TamperedSignatureIsRejected()
    {
        var verifier = Verifier();
        var token = Signed(Claims());
        var signatureStart = token.LastIndexOf('.') + 1;
        var flipped = token[signatureStart + 5] == 'A' ? 'B' : 'A';
        var tampered = string.Concat(token.AsSpan(0, signatureStart + 5), flipped.ToString(), token.AsSpan(signatureStart + 6));
        Assert.ThrowsAsync<CallerAuthenticationException>(() => verifier.AuthenticateAsync(tampered, CancellationToken.None));
    }

    [Test]
    public void TamperedClaimsAreRejected()
    {
        var verifier = Verifier();
        var parts = Signed(Claims()).Split('.');
        var other = Claims();
        other["sub"] = "someone-else";
        var forged = $"{parts[0]}.{Base64UrlEncoder.Encode(other.ToJsonString())}.{parts[2]}";
        Assert.ThrowsAsync<CallerAuthenticationException>(() => verifier.AuthenticateAsync(forged, CancellationToken.None));
    }

    [Test]
    public void Hs256TokenIsRejected()
    {
        var verifier = Verifier();
        var key = new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)) { KeyId = KeyId };
        var token = new JsonWebTokenHandler().CreateToken(Claims().ToJsonString(), new SigningCredentials(key, SecurityAlgorithms.HmacSha256));
        Assert.ThrowsAsync<CallerAuthenticationException>(() => verifier.AuthenticateAsync(token, CancellationToken.None));
    }

    [Test]
    public void NotAJwtIsRejected()
    {
        var verifier = Verifier();
        Assert.ThrowsAsync<CallerAuthenticationException>(() => verifier.AuthenticateAsync("not-a-token", CancellationToken.None));
    }

    [Test]
    public void UnsignedTokenIsRejectedOutsideEmulatorMode()
    {
        var verifier = Verifier();
        Assert.ThrowsAsync<CallerAuthenticationException>(() => verifier.AuthenticateAsync(Unsigned(Claims()), CancellationToken.None));
        Assert.That(_fetches, Is.Zero);
    }

    [Test]
    public async Task UnsignedTokenIsAcceptedInEmulatorMode()
    {
        var verifier = Verifier(acceptEmulatorTokens: true);
        var claims = Claims();
        claims["firebase"] = new JsonObject { ["sign_in_provider"] = "anonymous" };
        var identity = await verifier.AuthenticateAsync(Unsigned(claims), CancellationToken.None);
        Assert.That(identity, Is.EqualTo(new CallerIdentity("user-123", "anonymous")));
    }

    [Test]
    public void EmulatorModeStillChecksTheClaims()
    {
        var verifier = Verifier(acceptEmulatorTokens: true);
        var claims = Claims();
        claims["aud"] = "other-project";
        Assert.ThrowsAsync<CallerAuthenticationException>(() => verifier.AuthenticateAsync(Unsigned(claims), CancellationToken.None));
        Assert.ThrowsAsync<CallerAuthenticationException>(() => verifier.AuthenticateAsync(Unsigned(Claims()) + "c2lnbmF0dXJl", CancellationToken.None));
    }

    private static async Task<Exception?> Rejection(FirebaseIdTokenVerifier verifier, string token)
    {
        try
        {
            await verifier.AuthenticateAsync(token, CancellationToken.None);
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    private FirebaseIdTokenVerifier Verifier(bool acceptEmulatorTokens = false, Uri? certificatesUri = null) =>
        new(_http, new FirebaseIdTokenVerifierOptions
        {
            ProjectId = ProjectId,
            CertificatesUri = certificatesUri ?? _certificatesUri,
            AcceptEmulatorTokens = acceptEmulatorTokens,
        }, _clock);

    private JsonObject Claims() => new()
    {
        ["iss"] = Issuer,
        ["aud"] = ProjectId,
        ["auth_time"] = Seconds(-3600),
        ["user_id"] = "user-123",
        ["sub"] = "user-123",
        ["iat"] = Seconds(-60),
        ["exp"] = Seconds(3540),
        ["firebase"] = new JsonObject { ["identities"] = new JsonObject(), ["sign_in_provider"] = "password" },
    };

    private JsonNode Seconds(int fromNow) => _clock.GetUtcNow().AddSeconds(fromNow).ToUnixTimeSeconds();

    private string Signed(JsonObject claims, string keyId = KeyId)
    {
        var key = new RsaSecurityKey(_rsa) { KeyId = keyId };
        return new JsonWebTokenHandler().CreateToken(claims.ToJsonString(), new SigningCredentials(key, SecurityAlgorithms.RsaSha256));
    }

    // The Auth emulator's shape: header {"alg":"none","typ":"JWT"}, empty signature part.
    private static string Unsigned(JsonObject claims) =>
        $"{Base64UrlEncoder.Encode("""{"alg":"none","typ":"JWT"}""")}.{Base64UrlEncoder.Encode(claims.ToJsonString())}.";

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        private DateTimeOffset _now = now;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
