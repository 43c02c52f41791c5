using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using ReverseImageSearch.Gcp.Hosting;

namespace ReverseImageSearch.Tests.Gcp.Hosting;

public class ProtocolRequestTests
{
    private const int ImageCharacters = 16 << 20;

    [Test]
    public async Task DataWithoutWrappersIsTheBodysOwnNotACopy()
    {
        var body = Encoding.UTF8.GetBytes("{\"data\":{\"query\":[\"" + new string('A', ImageCharacters) + "\"],\"neighbours\":3}}");
        // A first read leaves the parser's working array in the shared pool, as any earlier request would.
        (await ProtocolRequest.TryReadDataAsync(Post(body).Request))!.Dispose();
        var context = Post(body);

        var before = GC.GetAllocatedBytesForCurrentThread();
        using var data = await ProtocolRequest.TryReadDataAsync(context.Request);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.That(data!.Data.GetProperty("query")[0].GetString()!.Length, Is.EqualTo(ImageCharacters));
        // The body is read into one array of its size; a copy of the data tree would be a second such array.
        Assert.That(allocated, Is.LessThan(body.Length * 3 / 2), "bytes allocated reading a 16 MB body");
    }

    [Test]
    public async Task WrappersAreDecodedIntoDataThatOutlivesTheBody()
    {
        var context = Post(Encoding.UTF8.GetBytes(
            """{"data":{"n":{"@type":"type.googleapis.com/google.protobuf.Int64Value","value":"42"},"s":"x"}}"""));

        using var data = await ProtocolRequest.TryReadDataAsync(context.Request);

        Assert.That(data!.Data.GetProperty("n").GetInt64(), Is.EqualTo(42));
        Assert.That(data.Data.GetProperty("s").GetString(), Is.EqualTo("x"));
    }

    private static DefaultHttpContext Post(byte[] body)
    {
        var context = new DefaultHttpContext();
        context.Features.Set<IHttpMaxRequestBodySizeFeature>(new BodyLimit());
        context.Request.Method = "POST";
        context.Request.ContentType = "application/json";
        context.Request.ContentLength = body.Length;
        context.Request.Body = new MemoryStream(body);
        return context;
    }

    private sealed class BodyLimit : IHttpMaxRequestBodySizeFeature
    {
        public bool IsReadOnly => false;

        public long? MaxRequestBodySize { get; set; } = 64 << 20;
    }
}
