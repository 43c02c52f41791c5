using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Embedding;

namespace ReverseImageSearch.Tests.Embedding;

/// <summary>MODEL_PRECISION picks the bundled float32 or int8 model; it cannot be combined with MODEL_URL.</summary>
public sealed class ModelPrecisionTests
{
    private static ExtensionOptions Load(params (string Key, string Value)[] extra) => TestOptions.Load(extra);

    [Test]
    public void DefaultIsFloat32()
    {
        Assert.That(Load().ModelPrecision, Is.EqualTo(ModelPrecision.Float32));
    }

    [Test]
    public void Int8IsAccepted()
    {
        Assert.That(Load(("MODEL_PRECISION", "int8")).ModelPrecision, Is.EqualTo(ModelPrecision.Int8));
    }

    [Test]
    public void UnknownPrecisionIsRejected()
    {
        var error = Assert.Throws<InvalidConfigurationException>(() => Load(("MODEL_PRECISION", "int4")));
        Assert.That(error!.Message, Does.Contain("MODEL_PRECISION").And.Contain("must be one of float32, int8"));
    }

    [Test]
    public void Int8WithAModelUrlIsRejected()
    {
        var error = Assert.Throws<InvalidConfigurationException>(() =>
            Load(("MODEL_PRECISION", "int8"), ("MODEL_URL", "https://example.com/model.onnx")));
        Assert.That(error!.Variable, Is.EqualTo("MODEL_PRECISION"));
    }

    [Test]
    public async Task EmptyModelUrlWithInt8ResolvesToTheBundledInt8Model()
    {
        using var http = new HttpClient();
        var path = await ModelLocator.ResolveAsync(
            null, ModelPrecision.Int8, http, Path.GetTempPath(), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, CancellationToken.None);
        Assert.That(path, Is.EqualTo(EmbedderOptions.BundledInt8ModelPath));
        Assert.That(File.Exists(path), Is.True, "model.int8.onnx is copied to the output like model.onnx");
    }
}
