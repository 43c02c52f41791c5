using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Gcp.Auth;
using ReverseImageSearch.Gcp.Hosting;

namespace ReverseImageSearch.Tests.Gcp.Hosting;

public class CallableProtocolTests
{
    private const string BadRequestBody = """{"error":{"message":"Bad Request","status":"INVALID_ARGUMENT"}}""";
    private const string UnauthenticatedBody = """{"error":{"message":"Unauthenticated","status":"UNAUTHENTICATED"}}""";

    private StubCallable _function = null!;
    private FunctionTestServer _server = null!;

    [SetUp]
    public async Task StartServer()
    {
        _function = new StubCallable();
        _server = await FunctionTestServer.StartAsync(endpoints =>
            endpoints.MapCallableFunction(FunctionEndpointRouteBuilderExtensions.AnyPath, _function, new StubAuthenticator()));
    }

    [TearDown]
    public async Task StopServer() => await _server.DisposeAsync();

    [Test]
    public async Task GetIsBadRequest()
    {
        using var response = await _server.Client.GetAsync(new Uri("/queryIndex", UriKind.Relative));
        await AssertErrorAsync(response, HttpStatusCode.BadRequest, BadRequestBody);
    }

    [TestCase("text/plain")]
    [TestCase("application/x-www-form-urlencoded")]
    public async Task OtherContentTypeIsBadRequest(string contentType)
    {
        using var response = await PostAsync("""{"data":1}""", contentType);
        await AssertErrorAsync(response, HttpStatusCode.BadRequest, BadRequestBody);
    }

    [TestCase("""{"data":1,"extra":2}""")]
    [TestCase("""{}""")]
    [TestCase("""{"date":1}""")]
    [TestCase("""{"data":1""")]
    [TestCase("")]
    [TestCase("""[{"data":1}]""")]
    public async Task BodyOtherThanOnlyDataIsBadRequest(string body)
    {
        using var response = await PostAsync(body);
        await AssertErrorAsync(response, HttpStatusCode.BadRequest, BadRequestBody);
    }

    [Test]
    public async Task MalformedRequestIsRejectedBeforeAuthentication()
    {
        using var response = await PostAsync("""{"nodata":1}""", authorization: "Basic abc");
        await AssertErrorAsync(response, HttpStatusCode.BadRequest, BadRequestBody);
    }

    [Test]
    public async Task ContentTypeParametersAndCaseAreIgnored()
    {
        using var response = await PostAsync("""{"data":{"n":1}}""", "Application/JSON; charset=utf-8");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(_function.Requests.Single().Data.GetProperty("n").GetInt32(), Is.EqualTo(1));
    }

    [TestCase("Basic dXNlcjpwYXNz")]
    [TestCase("Bearer")]
    [TestCase("bearer good-token")]
    [TestCase("Bearer not-a-valid-token")]
    public async Task UnacceptableAuthorizationIsUnauthenticated(string authorization)
    {
        using var response = await PostAsync("""{"data":null}""", authorization: authorization);
        await AssertErrorAsync(response, HttpStatusCode.Unauthorized, UnauthenticatedBody);
    }

    [Test]
    public async Task AuthenticatorFailureOfItsOwnIsInternalNotUnauthenticated()
    {
        using var response = await PostAsync("""{"data":null}""", authorization: "Bearer certificates-unreachable");
        await AssertErrorAsync(response, HttpStatusCode.InternalServerError, """{"error":{"status":"INTERNAL","message":"INTERNAL"}}""");
        Assert.That(_function.Requests, Is.Empty);
        Assert.That(_server.Logs.Lines.Single(line => line.Level == LogLevel.Error).Exception, Is.TypeOf<HttpRequestException>());
    }

    [Test]
    public async Task VerifiedTokenReachesTheHandler()
    {
        using var response = await PostAsync("""{"data":null}""", authorization: "Bearer good-token");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(_function.Requests.Single().Auth, Is.EqualTo(new CallerIdentity("user-1", "anonymous")));
    }

    [Test]
    public async Task MissingAuthorizationLeavesTheDecisionToTheHandler()
    {
        using var response = await PostAsync("""{"data":"x"}""");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(_function.Requests.Single().Auth, Is.Null);
    }

    [Test]
    public async Task NothingReturnedIsNullResult()
    {
        _function.Handle = _ => null;
        using var response = await PostAsync("""{"data":null}""");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await response.Content.ReadAsStringAsync(), Is.EqualTo("""{"result":null}"""));
    }

    [Test]
    public async Task ResultIsSerialisedInCamelCase()
    {
        _function.Handle = _ => new { Status = "ok", NearestNeighbors = new[] { 1, 2 } };
        using var response = await PostAsync("""{"data":null}""");
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/json"));
        Assert.That(await response.Content.ReadAsStringAsync(), Is.EqualTo("""{"result":{"status":"ok","nearestNeighbors":[1,2]}}"""));
    }

    [Test]
    public async Task FunctionExceptionWithDetailsKeepsThem()
    {
        _function.Handle = _ => throw new FunctionException(FunctionErrorCode.InvalidArgument, "bad query", new { Field = "query" });
        using var response = await PostAsync("""{"data":null}""");
        await AssertErrorAsync(response, HttpStatusCode.BadRequest,
            """{"error":{"status":"INVALID_ARGUMENT","message":"bad query","details":{"field":"query"}}}""");
    }

    [Test]
    public async Task FunctionExceptionWithoutDetailsOmitsTheKey()
    {
        _function.Handle = _ => throw new FunctionException(FunctionErrorCode.NotFound, "no index yet");
        using var response = await PostAsync("""{"data":null}""");
        await AssertErrorAsync(response, HttpStatusCode.NotFound, """{"error":{"status":"NOT_FOUND","message":"no index yet"}}""");
    }

    [Test]
    public async Task UnexpectedExceptionIsInternalWithoutItsMessageAndIsLogged()
    {
        _function.Handle = _ => throw new InvalidOperationException("secret connection string");
        using var response = await PostAsync("""{"data":null}""");
        await AssertErrorAsync(response, HttpStatusCode.InternalServerError, """{"error":{"status":"INTERNAL","message":"INTERNAL"}}""");
        var logged = _server.Logs.Lines.Single(line => line.Level == LogLevel.Error);
        Assert.That(logged.Exception?.Message, Is.EqualTo("secret connection string"));
        Assert.That(logged.Category, Is.EqualTo(typeof(StubCallable).FullName));
    }

    [Test]
    public async Task Int64ValueWrappersBecomeNumbers()
    {
        using var response = await PostAsync("""
            {"data":{"big":{"@type":"type.googleapis.com/google.protobuf.Int64Value","value":"-9007199254740993"},
                     "list":[{"@type":"type.googleapis.com/google.protobuf.UInt64Value","value":"18446744073709551615"}],
                     "notWrapper":{"@type":"type.googleapis.com/google.protobuf.Int64Value","value":"1.5"}}}
            """);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var data = _function.Requests.Single().Data;
        Assert.That(data.GetProperty("big").GetInt64(), Is.EqualTo(-9007199254740993L));
        Assert.That(data.GetProperty("list")[0].GetUInt64(), Is.EqualTo(ulong.MaxValue));
        Assert.That(data.GetProperty("notWrapper").ValueKind, Is.EqualTo(JsonValueKind.Object));
    }

    [Test]
    public async Task PreflightIsAnsweredWithoutRunningTheHandler()
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, "/queryIndex");
        request.Headers.Add("Origin", "https://app.example");
        request.Headers.Add("Access-Control-Request-Method", "POST");
        request.Headers.Add("Access-Control-Request-Headers", "authorization,content-type");
        using var response = await _server.Client.SendAsync(request);
        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
            Assert.That(response.Headers.GetValues("Access-Control-Allow-Origin"), Is.EqualTo(new[] { "https://app.example" }));
            Assert.That(response.Headers.GetValues("Access-Control-Allow-Methods").Single(), Is.EqualTo("GET,HEAD,PUT,PATCH,POST,DELETE"));
            Assert.That(response.Headers.GetValues("Access-Control-Allow-Headers").Single(), Is.EqualTo("authorization,content-type"));
            Assert.That(response.Headers.Vary, Does.Contain("Origin"));
            Assert.That(_function.Requests, Is.Empty);
        });
    }

    [Test]
    public async Task OriginIsReflectedOnCalls()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/any/path/at/all")
        {
            Content = new StringContent("""{"data":1}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("Origin", "http://localhost:5173");
        using var response = await _server.Client.SendAsync(request);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(response.Headers.GetValues("Access-Control-Allow-Origin").Single(), Is.EqualTo("http://localhost:5173"));
        Assert.That(response.Headers.Vary, Does.Contain("Origin"));
    }

    private async Task<HttpResponseMessage> PostAsync(string body, string contentType = "application/json", string? authorization = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/queryIndex")
        {
            Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body)),
        };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        return await _server.Client.SendAsync(request);
    }

    private async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string expectedBody)
    {
        Assert.That(response.StatusCode, Is.EqualTo(status));
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync());
        Assert.That(JsonNode.DeepEquals(body, JsonNode.Parse(expectedBody)), Is.True, body?.ToJsonString());
        if (status is HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized && _function.Handle is null)
        {
            Assert.That(_function.Requests, Is.Empty, "the handler must not run for a rejected request");
        }
    }

    internal sealed class StubCallable : ICallableFunction
    {
        public List<CallableRequest> Requests { get; } = [];

        public Func<CallableRequest, object?>? Handle { get; set; }

        public Task<object?> HandleAsync(CallableRequest request, CancellationToken cancellationToken)
        {
            Requests.Add(request with { Data = request.Data.Clone() }); // the data is readable during the call only
            return Task.FromResult(Handle is null ? (object?)"handled" : Handle(request));
        }
    }

    private sealed class StubAuthenticator : ICallerAuthenticator
    {
        public Task<CallerIdentity> AuthenticateAsync(string bearerToken, CancellationToken cancellationToken) =>
            bearerToken switch
            {
                "good-token" => Task.FromResult(new CallerIdentity("user-1", "anonymous")),
                "certificates-unreachable" => throw new HttpRequestException("securetoken certificates unreachable"),
                _ => throw new CallerAuthenticationException("not the good token"),
            };
    }
}
