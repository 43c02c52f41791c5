using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Tests.Deploy;

/// <summary>
/// extension.yaml (the parameter reference), deploy.sh (what installs) and ExtensionOptionsLoader (what the functions
/// read) name the same parameters, and deploy.sh's defaults are the loader's.
/// </summary>
public sealed partial class ParameterAgreementTests
{
    /// <summary>Keys the functions read that are not parameters: set by deploy.sh (or the platform) from what it looks up.</summary>
    private static readonly string[] Generated = ["PROJECT_ID", "EXT_INSTANCE_ID", "PROJECT_NUMBER"];

    [GeneratedRegex(@"^  - param: ([A-Z0-9_]+)\s*$", RegexOptions.Multiline)]
    private static partial Regex YamlParam();

    [GeneratedRegex(@"^#   ([A-Z0-9_]+)\s+\[", RegexOptions.Multiline)]
    private static partial Regex YamlAdvanced();

    private static string Yaml => File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "extension.yaml"));

    private static IReadOnlySet<string> YamlNames() =>
        YamlParam().Matches(Yaml).Concat(YamlAdvanced().Matches(Yaml)).Select(m => m.Groups[1].Value).ToHashSet();

    private static IReadOnlySet<string> LoaderNames()
    {
        var recording = new RecordingSource();
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(Required.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)))
            .Add(recording)
            .Build();
        ExtensionOptionsLoader.Load(configuration);
        return recording.Provider.Asked.Except(Generated).ToHashSet();
    }

    private static readonly Dictionary<string, string> Required = new()
    {
        ["PROJECT_ID"] = "my-project", ["EXT_INSTANCE_ID"] = "ris", ["LOCATION"] = "us-central1", ["IMG_BUCKET"] = "photos",
    };

    [Test]
    public async Task TheThreeNameTheSameParameters()
    {
        using var temp = new TempDir();
        var env = temp.Write("unknown.env", "NOT_A_PARAMETER=1\n");
        var run = await DeployScript.RunAsync(temp.Path, null, "--env-file", env, "--dry-run");
        var known = Regex.Match(run.StandardError, @"known keys: ([A-Z0-9_ ]+)\)").Groups[1].Value
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Except(Generated).Except(["IMG_BUCKET_LOCATION", "FIRESTORE_LOCATION"]).ToHashSet();

        var yaml = YamlNames();
        var loader = LoaderNames();
        Assert.Multiple(() =>
        {
            Assert.That(known, Is.Not.Empty, run.ToString());
            Assert.That(known, Is.EquivalentTo(yaml), "deploy.sh's keys and extension.yaml's parameters (with its advanced settings)");
            Assert.That(loader, Is.EquivalentTo(yaml), "what the functions read and extension.yaml's parameters");
        });
    }

    [Test]
    public async Task DeployDefaultsAreTheLoadersDefaults()
    {
        using var temp = new TempDir();
        var env = temp.Write("minimal.env", string.Join('\n', Required.Select(kv => $"{kv.Key}={kv.Value}")) + "\n");
        var run = await DeployScript.RunAsync(temp.Path, null, "--env-file", env, "--dry-run", "--no-install-task");
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        var file = run.Plan.First(c => c.Value("--env-vars-file") is not null).Value("--env-vars-file")!;
        var written = File.ReadAllLines(file)
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split(": ", 2))
            .ToDictionary(p => p[0], p => p[1].Trim('\''))
            .Where(kv => YamlNames().Contains(kv.Key) || Required.ContainsKey(kv.Key))
            .ToDictionary();

        // The functions loading deploy.sh's filled-in values get exactly the options they get from the required ones alone.
        var fromDeploy = ExtensionOptionsLoader.Load(new ConfigurationBuilder()
            .AddInMemoryCollection(written.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value))).Build());
        var fromDefaults = ExtensionOptionsLoader.Load(new ConfigurationBuilder()
            .AddInMemoryCollection(Required.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value))).Build());
        Assert.That(JsonSerializer.Serialize(fromDeploy), Is.EqualTo(JsonSerializer.Serialize(fromDefaults)));

        // And extension.yaml's literal defaults are the values deploy.sh wrote.
        foreach (Match m in Regex.Matches(Yaml, @"^  - param: ([A-Z0-9_]+)\s*$(?:(?!^  - param:)[\s\S])*?^    default: ([^\s$][^\n]*)$", RegexOptions.Multiline))
        {
            var (name, value) = (m.Groups[1].Value, m.Groups[2].Value.Trim());
            if (written.TryGetValue(name, out var deployed))
            {
                Assert.That(deployed, Is.EqualTo(value), $"{name}: extension.yaml's default and deploy.sh's");
            }
        }
    }

    [Test]
    public void ExtensionYamlSaysItIsAReferenceAndUsesTheSpecsV2Shape()
    {
        var yaml = Yaml;
        Assert.Multiple(() =>
        {
            Assert.That(yaml, Does.Contain("cannot be installed with `firebase ext:install`").And.Contain("Install with deploy.sh"));
            Assert.That(yaml, Does.Contain("name: reverse-image-search-dotnet"));
            Assert.That(yaml, Does.Not.Contain("eventFilterPathPatterns"), "path patterns are eventFilters with operator match-path-pattern");
            Assert.That(yaml, Does.Contain("operator: match-path-pattern"));
            Assert.That(yaml, Does.Not.Contain("role: storage.admin"), "the roles are what deploy.sh grants");
        });
    }

    private sealed class RecordingSource : IConfigurationSource
    {
        public RecordingProvider Provider { get; } = new();

        public IConfigurationProvider Build(IConfigurationBuilder builder) => Provider;
    }

    private sealed class RecordingProvider : ConfigurationProvider
    {
        public HashSet<string> Asked { get; } = new(StringComparer.Ordinal);

        public override bool TryGet(string key, out string? value)
        {
            Asked.Add(key);
            return base.TryGet(key, out value);
        }
    }
}
