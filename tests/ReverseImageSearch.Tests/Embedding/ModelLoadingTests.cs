using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Embedding;

namespace ReverseImageSearch.Tests.Embedding;

/// <summary>The model is found from MODEL_URL, and a model that does not fit INPUT_SHAPE is refused at load.</summary>
public sealed class ModelLoadingTests
{
    private string _cacheDirectory = null!;

    [SetUp]
    public void CreateCacheDirectory() =>
        _cacheDirectory = Directory.CreateTempSubdirectory("model-cache-").FullName;

    [TearDown]
    public void DeleteCacheDirectory() => Directory.Delete(_cacheDirectory, recursive: true);

    [Test]
    public void BundledModelLoadsWithItsFeatureDimensions()
    {
        using var embedder = EmbeddingTestSupport.CreateEmbedder();
        Assert.That(embedder.Dimensions, Is.EqualTo(1280));
    }

    [Test]
    public void ModelNotFittingTheInputShapeIsRefusedWithBothShapes()
    {
        var options = new EmbedderOptions(EmbedderOptions.BundledModelPath, InputHeight: 192, InputWidth: 192);

        var error = Assert.Throws<InvalidOperationException>(() => new OnnxImageEmbedder(options, NullLogger<OnnxImageEmbedder>.Instance).Dispose());

        Assert.That(error!.Message, Does.Contain(options.ModelPath).And.Contain("[N, 192, 192, 3]").And.Contain("[N, 224, 224, 3]"));
    }

    [Test]
    public void FileThatIsNotAModelIsRefusedNamingIt()
    {
        var path = Path.Combine(_cacheDirectory, "not-a-model.onnx");
        File.WriteAllText(path, "hello");

        var error = Assert.Throws<InvalidOperationException>(() =>
            new OnnxImageEmbedder(new EmbedderOptions(path), NullLogger<OnnxImageEmbedder>.Instance).Dispose());

        Assert.That(error!.Message, Does.Contain(path));
    }

    [TestCase(null)]
    [TestCase("")]
    public async Task EmptyModelUrlResolvesToTheBundledModel(string? modelUrl)
    {
        using var http = new HttpClient(new CountingHandler(HttpStatusCode.OK, []));
        var path = await ModelLocator.ResolveAsync(modelUrl, ModelPrecision.Float32, http, _cacheDirectory, NullLogger.Instance, CancellationToken.None);
        Assert.That(path, Is.EqualTo(EmbedderOptions.BundledModelPath));
    }

    [Test]
    public async Task LocalPathResolvesWhenTheFileExists()
    {
        var path = Path.Combine(_cacheDirectory, "mine.onnx");
        File.WriteAllBytes(path, [1, 2, 3]);
        using var http = new HttpClient(new CountingHandler(HttpStatusCode.OK, []));

        Assert.That(await ModelLocator.ResolveAsync(path, ModelPrecision.Float32, http, _cacheDirectory, NullLogger.Instance, CancellationToken.None), Is.EqualTo(path));
    }

    [Test]
    public void MissingLocalPathIsAnErrorNamingModelUrl()
    {
        var path = Path.Combine(_cacheDirectory, "missing.onnx");
        using var http = new HttpClient(new CountingHandler(HttpStatusCode.OK, []));

        var error = Assert.ThrowsAsync<FileNotFoundException>(() =>
            ModelLocator.ResolveAsync(path, ModelPrecision.Float32, http, _cacheDirectory, NullLogger.Instance, CancellationToken.None));

        Assert.That(error!.Message, Does.Contain("MODEL_URL").And.Contain(path));
    }

    [Test]
    public async Task UrlIsDownloadedOnceIntoTheCache()
    {
        byte[] model = [7, 7, 7, 42];
        var handler = new CountingHandler(HttpStatusCode.OK, model);
        using var http = new HttpClient(handler);
        const string Url = "https://models.example.com/feature-vector.onnx";

        var first = await ModelLocator.ResolveAsync(Url, ModelPrecision.Float32, http, _cacheDirectory, NullLogger.Instance, CancellationToken.None);
        var second = await ModelLocator.ResolveAsync(Url, ModelPrecision.Float32, http, _cacheDirectory, NullLogger.Instance, CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(second, Is.EqualTo(first));
            Assert.That(Path.GetDirectoryName(first), Is.EqualTo(_cacheDirectory));
            Assert.That(File.ReadAllBytes(first), Is.EqualTo(model));
            Assert.That(handler.Requests, Is.EqualTo(1));
            Assert.That(Directory.GetFiles(_cacheDirectory), Has.Length.EqualTo(1), "no temporary file is left behind");
        });
    }

    [Test]
    public void FailedDownloadNamesTheUrlAndStatusAndCachesNothing()
    {
        using var http = new HttpClient(new CountingHandler(HttpStatusCode.NotFound, []));
        const string Url = "https://models.example.com/missing.onnx";

        var error = Assert.ThrowsAsync<InvalidOperationException>(() =>
            ModelLocator.ResolveAsync(Url, ModelPrecision.Float32, http, _cacheDirectory, NullLogger.Instance, CancellationToken.None));

        Assert.That(error!.Message, Does.Contain(Url).And.Contain("404"));
        Assert.That(Directory.GetFiles(_cacheDirectory), Is.Empty);
    }

    private sealed class CountingHandler(HttpStatusCode status, byte[] body) : HttpMessageHandler
    {
        public int Requests { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Requests++;
            return Task.FromResult(new HttpResponseMessage(status) { Content = new ByteArrayContent(body) });
        }
    }
}
