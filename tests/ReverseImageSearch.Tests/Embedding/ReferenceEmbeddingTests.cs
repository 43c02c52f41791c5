using System.Text.Json;
using System.Text.Json.Serialization;
using ReverseImageSearch.Embedding;

namespace ReverseImageSearch.Tests.Embedding;

/// <summary>The bundled model on the three synthetic images of reference.json gives the recorded embeddings.</summary>
public sealed class ReferenceEmbeddingTests
{
    private const int Side = 224;

    // The recipes of reference.json, evaluated in double precision and rounded once to float32.
    internal static readonly Dictionary<string, Func<int, int, int, double>> Recipes = new()
    {
        ["gradient"] = (x, y, c) => c switch
        {
            0 => x / 223.0,
            1 => y / 223.0,
            _ => (x + y) / 446.0,
        },
        ["checker32"] = (x, y, c) => ((x / 32) + (y / 32) + c) % 2,
        ["waves"] = (x, y, c) => 0.5 + (0.5 * Math.Sin((x * (c + 1) / 16.0) + (y / 9.0))),
    };

    private static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = true };

    private OnnxImageEmbedder _embedder = null!;

    [OneTimeSetUp]
    public void LoadModel() => _embedder = EmbeddingTestSupport.CreateRawModelEmbedder();

    [OneTimeTearDown]
    public void UnloadModel() => _embedder.Dispose();

    [Test]
    public void EveryReferenceImageHasARecipe()
    {
        Assert.That(LoadReference().Images.Select(image => image.Name), Is.EquivalentTo(Recipes.Keys));
    }

    [TestCase("gradient")]
    [TestCase("checker32")]
    [TestCase("waves")]
    public void RecipeReproducesTheCheckPixels(string name)
    {
        var image = LoadReference().Images.Single(i => i.Name == name);
        var tensor = Render(Recipes[name]);
        Assert.Multiple(() =>
        {
            foreach (var check in image.CheckPixels)
            {
                var offset = ((check.Y * Side) + check.X) * 3;
                Assert.That(tensor.AsSpan(offset, 3).ToArray(), Is.EqualTo(check.Rgb), $"pixel ({check.X}, {check.Y})");
            }
        });
    }

    [TestCase("gradient")]
    [TestCase("checker32")]
    [TestCase("waves")]
    public void BundledModelMatchesTheRecordedEmbedding(string name)
    {
        var image = LoadReference().Images.Single(i => i.Name == name);
        var embedding = _embedder.EmbedPreprocessed(Render(Recipes[name]), 1)[0];

        Assert.That(embedding, Has.Length.EqualTo(_embedder.Dimensions));
        Assert.Multiple(() =>
        {
            Assert.That(embedding.Take(16), Is.EqualTo(image.EmbeddingFirst16).Within(1e-3));
            foreach (var at in image.EmbeddingAt)
            {
                Assert.That(embedding[at.Index], Is.EqualTo(at.Value).Within(1e-3), $"value at {at.Index}");
            }

            Assert.That(EmbeddingTestSupport.Norm(embedding), Is.EqualTo(image.EmbeddingL2Norm).Within(image.EmbeddingL2Norm * 1e-3));
            // Relative like the norm: the runtimes agree to about 1e-5 of it, far inside this.
            Assert.That(embedding.Sum(v => (double)v), Is.EqualTo(image.EmbeddingSum).Within(image.EmbeddingSum * 1e-3));
        });
    }

    internal static float[] Render(Func<int, int, int, double> recipe)
    {
        var tensor = new float[Side * Side * 3];
        for (var y = 0; y < Side; y++)
        {
            for (var x = 0; x < Side; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    tensor[(((y * Side) + x) * 3) + c] = (float)recipe(x, y, c);
                }
            }
        }

        return tensor;
    }

    private static ReferenceFile LoadReference()
    {
        var path = Path.Combine(TestContext.CurrentContext.TestDirectory, "Embedding", "reference.json");
        return JsonSerializer.Deserialize<ReferenceFile>(File.ReadAllText(path), Json)
            ?? throw new InvalidDataException($"{path} is empty.");
    }

    private sealed record ReferenceFile(IReadOnlyList<ReferenceImage> Images);

    private sealed record ReferenceImage(
        string Name,
        [property: JsonPropertyName("check_pixels")] IReadOnlyList<CheckPixel> CheckPixels,
        [property: JsonPropertyName("embedding_first16")] float[] EmbeddingFirst16,
        [property: JsonPropertyName("embedding_l2norm")] double EmbeddingL2Norm,
        [property: JsonPropertyName("embedding_sum")] double EmbeddingSum,
        [property: JsonPropertyName("embedding_at")] IReadOnlyList<ValueAt> EmbeddingAt);

    private sealed record CheckPixel(int X, int Y, float[] Rgb);

    private sealed record ValueAt(int Index, float Value);
}
