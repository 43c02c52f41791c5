using System.Text.Json;

namespace ReverseImageSearch.Tests.Deploy;

/// <summary>
/// Only the four functions that embed carry ONNX Runtime, Skia (with their native files for every platform) and the
/// bundled model; the other five only move documents and must ship none of it (issue 14). Read from what the build
/// wrote: each function's deps.json (the libraries and projects its output and its publish carry), and the project
/// files of the projects named there (the model travels as an item of a project).
/// </summary>
public sealed class FunctionPayloadTests
{
    private static readonly string[] Embedding = ["BackfillTask", "StreamUpdateDatapoint", "DatapointWriteTask", "QueryIndex"];

    private static readonly string[] NotEmbedding = ["BackfillTrigger", "CreateIndexTrigger", "StreamRemoveDatapoint", "OnIndexCreated", "OnIndexDeployed"];

    private static readonly string[] EmbedderLibraries = ["Microsoft.ML.OnnxRuntime", "SkiaSharp", "SkiaSharp.NativeAssets.Linux.NoDependencies", "MetadataExtractor"];

    [Test]
    public void TheNineFunctionsAreTheFourThatEmbedAndTheFiveThatDoNot()
    {
        var projects = Directory.GetDirectories(Path.Combine(TestPaths.RepoRoot, "functions")).Select(Path.GetFileName);
        Assert.That(projects, Is.EquivalentTo(Embedding.Concat(NotEmbedding)));
    }

    [TestCaseSource(nameof(NotEmbedding))]
    public void AFunctionThatDoesNotEmbedCarriesNoOnnxRuntimeSkiaOrModel(string function)
    {
        var (libraries, projects) = ReadDeps(function);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(libraries.Intersect(EmbedderLibraries), Is.Empty, "no ONNX Runtime, Skia or image metadata library");
            Assert.That(projects, Does.Not.Contain("ReverseImageSearch.Embedding"));
            Assert.That(projects.Where(CarriesTheModel), Is.Empty, "no project of its build copies the model");
        }
    }

    [TestCaseSource(nameof(Embedding))]
    public void AFunctionThatEmbedsCarriesTheEmbedderAndTheModel(string function)
    {
        var (libraries, projects) = ReadDeps(function);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(libraries, Is.SupersetOf(EmbedderLibraries));
            Assert.That(projects.Where(CarriesTheModel), Is.EqualTo(new[] { "ReverseImageSearch.Embedding" }));
        }
    }

    /// <summary>The package and project names in the function's deps.json, as its build in this configuration wrote it.</summary>
    private static (List<string> Libraries, List<string> Projects) ReadDeps(string function)
    {
        // The tests' own output is bin/<configuration>/<framework>/: the functions were built beside them the same way.
        var framework = new DirectoryInfo(AppContext.BaseDirectory);
        var path = Path.Combine(TestPaths.RepoRoot, "functions", function, "bin", framework.Parent!.Name, framework.Name, function + ".deps.json");
        Assert.That(File.Exists(path), Is.True, $"{path} is written by the build the tests reference");
        using var deps = JsonDocument.Parse(File.ReadAllText(path));
        var entries = deps.RootElement.GetProperty("libraries").EnumerateObject()
            .Select(e => (Name: e.Name.Split('/')[0], Type: e.Value.GetProperty("type").GetString()))
            .ToList();
        return (entries.Where(e => e.Type == "package").Select(e => e.Name).ToList(),
            entries.Where(e => e.Type == "project").Select(e => e.Name).ToList());
    }

    private static bool CarriesTheModel(string project)
    {
        var file = new[] { "functions", "shared" }
            .SelectMany(dir => Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, dir), project + ".csproj", SearchOption.AllDirectories))
            .Single();
        return File.ReadAllText(file).Contains("models/mobilenet_v2/", StringComparison.Ordinal);
    }
}
