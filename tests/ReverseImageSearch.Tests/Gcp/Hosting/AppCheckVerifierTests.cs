using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Gcp.Auth;
using ReverseImageSearch.Gcp.Hosting;

namespace ReverseImageSearch.Tests.Gcp.Hosting;

/// <summary>
/// ENFORCE_APP_CHECK: App Check tokens signed by a test key whose JWKS a local server publishes (as
/// https://firebaseappcheck.googleapis.com/v1/jwks does), and forged, expired and wrong-project tokens.
/// </summary>
public sealed class AppCheckVerifierTests : IDisposable
{
    private const string ProjectNumber = "123456789012";
    private const string KeyId = "appcheck-key-1";

    private readonly RSA _rsa = RSA.Create(2048);
    private readonly RSA _forger = RSA.Create(2048);
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private WebApplication _jwksServer = null!;
    private Uri _jwksUri = null!;
    private int _fetches;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task StartJwksServer()
    {
        var parameters = _rsa.ExportParameters(false);
        var jwks = new JsonObject
        {
            ["keys"] = new JsonArray(new JsonObject
            {
                ["kty"] = "RSA", ["use"] = "sig", ["alg"] = "RS256", ["kid"] = KeyId,
                ["n"] = Base64UrlEncoder.Encode(parameters.Modulus), ["e"] = Base64UrlEncoder.Encode(parameters.Exponent),
            }),
        }.ToJsonString();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _jwksServer = builder.Build();
        _jwksServer.MapGet("/v1/jwks", (HttpContext context) =>
        {
            Interlocked.Increment(ref _fetches);
            context.Response.Headers.CacheControl = "public, max-age=21600";
            return Results.Text(jwks, "application/json");
        });
        await _jwksServer.StartAsync();
        _jwksUri = new Uri(new Uri(_jwksServer.Urls.Single()), "/v1/jwks");
        _http = new HttpClient();
    }

    [OneTimeTearDown]
    public async Task StopJwksServer()
    {
        _http.Dispose();
        await _jwksServer.DisposeAsync();
    }

    [SetUp]
    public void ResetFetches() => _fetches = 0;

    public void Dispose()
    {
        _rsa.Dispose();
        _forger.Dispose();
    }

    [Test]
    public async Task AValidTokenPassesAndTheKeysAreCachedForTheirMaxAge()
    {
        var verifier = Verifier();
        await verifier.VerifyAsync(Signed(Claims()), CancellationToken.None);
        await verifier.VerifyAsync(Signed(Claims()), CancellationToken.None);
        Assert.That(_fetches, Is.EqualTo(1), "one fetch while the Cache-Control max-age lasts");

        _clock.Advance(TimeSpan.FromHours(7));
        await verifier.VerifyAsync(Signed(Claims()), CancellationToken.None);
        Assert.That(_fetches, Is.EqualTo(2), "fetched again once max-age (6 h) has passed");
    }

    [Test]
    public void AForgedTokenIsRefused() =>
        Assert.ThrowsAsync<CallerAuthenticationException>(() => Verifier().VerifyAsync(Signed(Claims(), _forger), CancellationToken.None));

    [Test]
    public void AnExpiredTokenIsRefused()
    {
        var claims = Claims();
        claims["exp"] = Seconds(-1);
        Assert.ThrowsAsync<CallerAuthenticationException>(() => Verifier().VerifyAsync(Signed(claims), CancellationToken.None));
    }

    [TestCase("https://firebaseappcheck.googleapis.com/999999999999", $"projects/{ProjectNumber}")]
    [TestCase($"https://firebaseappcheck.googleapis.com/{ProjectNumber}", "projects/999999999999")]
    [TestCase($"https://securetoken.google.com/{ProjectNumber}", $"projects/{ProjectNumber}")]
    public void ATokenForAnotherProjectIsRefused(string issuer, string audience)
    {
        var claims = Claims();
        claims["iss"] = issuer;
        claims["aud"] = new JsonArray(audience, "projects/demo-project");
        Assert.ThrowsAsync<CallerAuthenticationException>(() => Verifier().VerifyAsync(Signed(claims), CancellationToken.None));
    }

    [TestCase(null)]
    [TestCase("")]
    [TestCase("not-a-jwt")]
    public void AMissingOrMalformedTokenIsRefused(string? token) =>
        Assert.ThrowsAsync<CallerAuthenticationException>(() => Verifier().VerifyAsync(token, CancellationToken.None));

    [Test]
    public void AnHmacTokenIsRefused()
    {
        var key = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(new string('k', 64))) { KeyId = KeyId };
        var token = new JsonWebTokenHandler().CreateToken(Claims().ToJsonString(), new SigningCredentials(key, SecurityAlgorithms.HmacSha256));
        Assert.ThrowsAsync<CallerAuthenticationException>(() => Verifier().VerifyAsync(token, CancellationToken.None));
    }

    // The callable protocol with ENFORCE_APP_CHECK: unauthenticated without a valid token, before the handler runs.
    [Test]
    public async Task TheCallableAnswersUnauthenticatedWithoutAValidAppCheckToken()
    {
        var function = new CallableProtocolTests.StubCallable();
        await using var server = await FunctionTestServer.StartAsync(
            endpoints => endpoints.MapCallableFunction("/", function, new NoCaller()),
            services => services.AddSingleton(Verifier()));

        async Task<HttpStatusCode> CallAsync(string? appCheck)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/") { Content = new StringContent("""{"data":{}}""", Encoding.UTF8, "application/json") };
            if (appCheck is not null)
            {
                request.Headers.Add(AppCheckVerifier.HeaderName, appCheck);
            }

            using var response = await server.Client.SendAsync(request);
            if (response.StatusCode == HttpStatusCode.Unauthorized)
            {
                Assert.That(await response.Content.ReadAsStringAsync(), Does.Contain("UNAUTHENTICATED"));
            }

            return response.StatusCode;
        }

        Assert.That(await CallAsync(null), Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(await CallAsync(Signed(Claims(), _forger)), Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(function.Requests, Is.Empty, "the handler never ran");
        Assert.That(await CallAsync(Signed(Claims())), Is.EqualTo(HttpStatusCode.OK));
        Assert.That(function.Requests, Has.Count.EqualTo(1));
    }

    [Test]
    public void EnforcementIsOffByDefaultAndNeedsTheProjectNumber()
    {
        static ReverseImageSearch.Core.Configuration.ExtensionOptions Load(params (string Key, string Value)[] extra) => TestOptions.Load(extra);

        Assert.That(Load().EnforceAppCheck, Is.False);
        var on = Load(("ENFORCE_APP_CHECK", "true"), ("PROJECT_NUMBER", ProjectNumber));
        Assert.That((on.EnforceAppCheck, on.ProjectNumber), Is.EqualTo((true, ProjectNumber)));
        var missing = Assert.Throws<ReverseImageSearch.Core.Configuration.InvalidConfigurationException>(() => Load(("ENFORCE_APP_CHECK", "true")));
        Assert.That(missing!.Message, Does.Contain("PROJECT_NUMBER").And.Contain("ENFORCE_APP_CHECK"));
        Assert.Throws<ReverseImageSearch.Core.Configuration.InvalidConfigurationException>(() => Load(("ENFORCE_APP_CHECK", "yes")));
    }

    private AppCheckVerifier Verifier() => new(_http, ProjectNumber, _jwksUri, _clock);

    private JsonObject Claims() => new()
    {
        ["iss"] = $"https://firebaseappcheck.googleapis.com/{ProjectNumber}",
        ["aud"] = new JsonArray($"projects/{ProjectNumber}", "projects/demo-project"),
        ["sub"] = "1:123456789012:web:abcdef",
        ["iat"] = Seconds(-60),
        ["exp"] = Seconds(3540),
    };

    private JsonNode Seconds(int fromNow) => _clock.GetUtcNow().AddSeconds(fromNow).ToUnixTimeSeconds();

    private string Signed(JsonObject claims, RSA? signer = null)
    {
        var key = new RsaSecurityKey(signer ?? _rsa) { KeyId = KeyId };
        return new JsonWebTokenHandler().CreateToken(claims.ToJsonString(), new SigningCredentials(key, SecurityAlgorithms.RsaSha256));
    }

    private sealed class NoCaller : ICallerAuthenticator
    {
        public Task<CallerIdentity> AuthenticateAsync(string bearerToken, CancellationToken cancellationToken) =>
            throw new CallerAuthenticationException("no ID tokens in this test");
    }

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        private DateTimeOffset _now = now;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
