using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ReverseImageSearch.Emulator;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>
/// The served emulator at its edges (issue 11): files reached through links out of the images folder, callers
/// from other web pages, and request bodies around the size limit. One process serves every test here.
/// </summary>
[Parallelizable(ParallelScope.None)]
public class EmulatorEdgeTests
{
    private const string CallablePath = "/demo-reverse-image-search/us-central1/ext-storage-reverse-image-search-queryIndex";

    private string _root = null!;
    private string _images = null!;
    private EmulatorProcess _serve = null!;
    private HttpClient _http = null!;
    private int _port;

    [OneTimeSetUp]
    public async Task ServeAFolderWithALinkOutOfItAsync()
    {
        _root = Directory.CreateTempSubdirectory("ris-edges-").FullName;
        _images = SampleImages.EnsureCreated(Path.Combine(_root, "photos"));
        var outside = Directory.CreateDirectory(Path.Combine(_root, "outside")).FullName;
        File.WriteAllText(Path.Combine(outside, "passwd"), "root:x:0:0");
        File.Copy(Directory.GetFiles(_images).Order(StringComparer.Ordinal).First(), Path.Combine(outside, "linked-away.jpg"));
        Directory.CreateSymbolicLink(Path.Combine(_images, "etcdir"), outside);

        _port = EmulatorProcess.FreePort();
        _serve = EmulatorProcess.Start(["serve", "--images", _images, "--data", Path.Combine(_root, "data"), "--port", _port.ToString(CultureInfo.InvariantCulture)]);
        _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_port}"), Timeout = TimeSpan.FromSeconds(60) };
        var sample = await File.ReadAllBytesAsync(Path.Combine(_images, "circle-blue.jpg"));
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (await TryQueryAsync(sample) != HttpStatusCode.OK)
        {
            Assert.That(_serve.HasExited, Is.False, () => "serve exited early: " + _serve.Output);
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), () => "no answer within 90 s: " + _serve.Output);
            await Task.Delay(250);
        }
    }

    [OneTimeTearDown]
    public void StopServing()
    {
        _http.Dispose();
        _serve.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    [Test]
    public async Task AFileBehindALinkOutOfTheImagesFolderIsNeverServedNorIndexed()
    {
        using var served = await _http.GetAsync(new Uri("/images/etcdir/passwd", UriKind.Relative));
        Assert.That(served.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(await served.Content.ReadAsStringAsync(), Does.Not.Contain("root:x"));

        using var inside = await _http.GetAsync(new Uri("/images/circle-blue.jpg", UriKind.Relative));
        Assert.That(inside.StatusCode, Is.EqualTo(HttpStatusCode.OK), "files inside the folder are still served");

        var status = await _http.GetFromJsonAsync<JsonElement>(new Uri("/api/status", UriKind.Relative));
        Assert.That(status.GetProperty("tasks").GetProperty("totalLength").GetInt64(), Is.EqualTo(Directory.GetFiles(_images).Length),
            "only the files in the folder are indexed, not the one behind the link");
    }

    [TestCase("https://evil.example")]
    [TestCase("http://evil.example:5001")]
    [TestCase("null")]
    public async Task ACallFromAnotherWebPageIsRefusedAndItsOriginNotEchoed(string origin)
    {
        using var preflight = await SendAsync(HttpMethod.Options, origin, body: null);
        Assert.That(preflight.Headers.Contains("Access-Control-Allow-Origin"), Is.False);

        using var call = await SendAsync(HttpMethod.Post, origin, QueryBody(await File.ReadAllBytesAsync(Path.Combine(_images, "circle-blue.jpg"))));
        Assert.That(call.Headers.Contains("Access-Control-Allow-Origin"), Is.False);
        Assert.That(call.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        var error = (await call.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.That(error.GetProperty("status").GetString(), Is.EqualTo("PERMISSION_DENIED"));
        Assert.That(error.GetProperty("message").GetString(), Does.Contain("--allow-origin"));
    }

    [TestCase("http://localhost:5173")]
    [TestCase("http://127.0.0.1:3000")]
    [TestCase("http://[::1]:8080")]
    public async Task ACallFromALoopbackPageIsAnsweredWithItsOrigin(string origin)
    {
        using var call = await SendAsync(HttpMethod.Post, origin, QueryBody(await File.ReadAllBytesAsync(Path.Combine(_images, "circle-blue.jpg"))));
        Assert.That(call.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(call.Headers.GetValues("Access-Control-Allow-Origin").Single(), Is.EqualTo(origin));
    }

    [Test]
    public async Task TheSearchPagesOwnOriginMayCall()
    {
        var origin = $"http://127.0.0.1:{_port}";
        using var call = await SendAsync(HttpMethod.Post, origin, QueryBody(await File.ReadAllBytesAsync(Path.Combine(_images, "circle-blue.jpg"))));
        Assert.That(call.StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public async Task BoundToANonLoopbackAddressACallWithoutATokenIsRefused()
    {
        // Listening on every address; the test still calls over loopback only.
        var port = EmulatorProcess.FreePort();
        using var exposed = EmulatorProcess.Start(["serve", "--host", "0.0.0.0", "--data", Path.Combine(_root, "exposed"), "--port", port.ToString(CultureInfo.InvariantCulture)]);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var body = JsonSerializer.Serialize(new { data = new { query = new[] { Convert.ToBase64String(await File.ReadAllBytesAsync(Path.Combine(_images, "circle-blue.jpg"))) } } });
        HttpResponseMessage? response = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(60); response is null; await Task.Delay(250))
        {
            Assert.That(exposed.HasExited, Is.False, () => "serve exited early: " + exposed.Output);
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), () => "serve did not listen within 60 s: " + exposed.Output);
            try
            {
                response = await http.PostAsync(new Uri(CallablePath, UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json"));
            }
            catch (HttpRequestException)
            {
            }
        }

        using (response)
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), await response.Content.ReadAsStringAsync());
        }

        Assert.That(exposed.StandardOutput, Does.Contain("must send a Firebase ID token"));
    }

    [Test]
    public async Task ALegalImageLargerThanKestrelsDefaultBodyLimitGetsTheCallablesAnswer()
    {
        // 24 MB is under MAX_IMAGE_BYTES (32 MiB) but its base64 body (32 MB) is over Kestrel's default 30,000,000.
        var noise = new byte[24_000_000];
        new Random(11).NextBytes(noise);
        using var call = await SendAsync(HttpMethod.Post, origin: null, QueryBody(noise));
        Assert.That(call.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        var error = (await call.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.That(error.GetProperty("message").GetString(), Does.StartWith("query[0] is not a usable image"));
    }

    [Test]
    public async Task ABodyOverTheLimitIsAnsweredInTheCallablesErrorShape()
    {
        var tooLarge = new byte[(32 * 1024 * 1024) + 300_000];
        using var call = await SendAsync(HttpMethod.Post, origin: null, QueryBody(tooLarge));
        Assert.That(call.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        var error = (await call.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.That(error.GetProperty("status").GetString(), Is.EqualTo("INVALID_ARGUMENT"));
        Assert.That(error.GetProperty("message").GetString(), Does.Contain("MAX_IMAGE_BYTES"));
        Assert.That(await TryQueryAsync(await File.ReadAllBytesAsync(Path.Combine(_images, "circle-blue.jpg"))), Is.EqualTo(HttpStatusCode.OK));
    }

    private static ByteArrayContent QueryBody(byte[] image)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(
            JsonSerializer.Serialize(new { data = new { query = new[] { Convert.ToBase64String(image) }, neighbours = 3 } })));
        content.Headers.ContentType = new("application/json");
        return content;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string? origin, HttpContent? body)
    {
        using var request = new HttpRequestMessage(method, CallablePath) { Content = body };
        if (origin is not null)
        {
            request.Headers.Add("Origin", origin);
        }

        if (method == HttpMethod.Options)
        {
            request.Headers.Add("Access-Control-Request-Method", "POST");
            request.Headers.Add("Access-Control-Request-Headers", "content-type");
        }

        return await _http.SendAsync(request);
    }

    private async Task<HttpStatusCode?> TryQueryAsync(byte[] image)
    {
        try
        {
            using var response = await SendAsync(HttpMethod.Post, origin: null, QueryBody(image));
            return response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }
}
