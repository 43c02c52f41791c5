using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using ReverseImageSearch.Core.Configuration;
using YamlDotNet.RepresentationModel;

namespace ReverseImageSearch.Tests.Deploy;

/// <summary>
/// ExtensionParameters defines every parameter's name, default and rule once; extension.yaml (the parameter reference),
/// deploy.sh (what installs) and ExtensionOptionsLoader (what the functions read) must agree with it: the same names,
/// the same defaults, and the same verdict on every probe value.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // bash
public sealed partial class ParameterAgreementTests
{
    /// <summary>Read by the functions, not parameters of extension.yaml (Firebase, or deploy.sh, provides them).</summary>
    private static readonly string[] NotInYaml = ["PROJECT_ID", "EXT_INSTANCE_ID", "PROJECT_NUMBER"];

    /// <summary>Looked up by deploy.sh (gcloud projects describe), not read from the env file.</summary>
    private static readonly string[] LookedUpByDeploy = ["PROJECT_NUMBER"];

    /// <summary>Keys of the env file deploy.sh itself uses and the functions never read.</summary>
    private static readonly string[] DeployOnly = ["IMG_BUCKET_LOCATION", "FIRESTORE_LOCATION", "VECTOR_DIMENSION"];

    /// <summary>
    /// Where the functions knowingly accept more than deploy.sh, and why; any other difference fails.
    /// </summary>
    private static readonly Dictionary<string, string> LoaderWider = new()
    {
        ["EXT_INSTANCE_ID"] = "deploy.sh's service account ids ext-/exq-{id} allow 30 characters and no trailing hyphen",
        ["MODEL_URL"] = "the local emulator loads models from file paths and http:// URLs; Cloud Run downloads https:// only",
    };

    private static readonly Dictionary<string, string> Required = new()
    {
        ["PROJECT_ID"] = "my-project", ["EXT_INSTANCE_ID"] = "ris", ["LOCATION"] = "us-central1", ["IMG_BUCKET"] = "photos",
    };

    /// <summary>Values a probe of one parameter needs in others so that only its own rule decides.</summary>
    private static readonly Dictionary<string, Dictionary<string, string>> Context = new()
    {
        ["MIN_REPLICA_COUNT"] = new() { ["MAX_REPLICA_COUNT"] = "1000" },
    };

    /// <summary>deploy.sh always writes PROJECT_NUMBER (ENFORCE_APP_CHECK=true needs it).</summary>
    private const string ProjectNumber = "123456789012";

    private static readonly string[] TextProbes =
    [
        "a", "ab", "abcdef", "my-project", "my-project-", "-abc", "1abc", "Abc", "a_b", "a.b", "a b", "a-b-c",
        "images", "a/b", "products/photos", "/a", "a/", "a//b", "año", "fotos/año", "a\tb",
        new string('x', 26), new string('x', 27), new string('x', 30), new string('x', 31), new string('x', 63), new string('x', 64),
        "224,224", "16,4096", "15,16", "16,4097", "224", "224,224,3", "٢٢٤,224", "99999999999,224", " 224,224",
        "https://e.com/m.onnx", "http://e.com/m.onnx", "gs://b/m.onnx", "/models/m.onnx", "https://e.com/a b.onnx", "https://",
        "123456789012", "12a", "0", "my-project.appspot.com", "UPPER",
    ];

    private static string YamlText => File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "extension.yaml"));

    [Test]
    public async Task TheThreeNameTheSameParameters()
    {
        using var temp = new TempDir();
        var env = temp.Write("unknown.env", "NOT_A_PARAMETER=1\n");
        var run = await DeployScript.RunAsync(temp.Path, null, "check", "--env-file", env);
        var deployKeys = Regex.Match(run.StandardError, @"known keys: ([A-Z0-9_ ]+)\)").Groups[1].Value
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Except(DeployOnly).ToHashSet();
        var defined = ExtensionParameters.All.Select(p => p.Name).ToHashSet();

        Assert.Multiple(() =>
        {
            Assert.That(deployKeys, Is.Not.Empty, run.ToString());
            Assert.That(LoaderNames(), Is.EquivalentTo(defined), "what the functions read and ExtensionParameters");
            Assert.That(YamlParameters().Keys, Is.EquivalentTo(defined.Except(NotInYaml)),
                "extension.yaml's parameters (with its advanced settings) and ExtensionParameters");
            Assert.That(deployKeys, Is.EquivalentTo(defined.Except(LookedUpByDeploy)), "deploy.sh's keys and ExtensionParameters");
        });
    }

    [Test]
    public async Task TheThreeHaveTheSameDefaults()
    {
        using var temp = new TempDir();
        var check = await DeployScript.RunAsync(temp.Path, null, "check", "--env-file", temp.Write("minimal.env", EnvFile(Required)));
        Assert.That(check.ExitCode, Is.Zero, check.ToString());
        var printed = ParseCheck(check.StandardOutput);
        var yaml = YamlParameters();

        Assert.Multiple(() =>
        {
            foreach (var parameter in ExtensionParameters.All.Where(p => !Required.ContainsKey(p.Name)))
            {
                if (!LookedUpByDeploy.Contains(parameter.Name))
                {
                    Assert.That(printed.GetValueOrDefault(parameter.Name), Is.EqualTo(parameter.DefaultText ?? ""), $"{parameter.Name}: deploy.sh's default");
                }

                if (yaml.TryGetValue(parameter.Name, out var declared))
                {
                    Assert.That(declared.Default, Is.EqualTo(parameter.DefaultText), $"{parameter.Name}: extension.yaml's default");
                }
            }

            // The functions loading deploy.sh's filled-in values get exactly what they get from the required ones alone,
            // which is what ExtensionOptions' own initial values say.
            var required = new ExtensionOptions
            {
                ProjectId = Required["PROJECT_ID"], InstanceId = Required["EXT_INSTANCE_ID"],
                Location = Required["LOCATION"], ImageBucket = Required["IMG_BUCKET"],
            };
            Assert.That(Serialize(Load(printed)), Is.EqualTo(Serialize(Load(Required))), "deploy.sh's defaults and the loader's");
            Assert.That(Serialize(required), Is.EqualTo(Serialize(Load(Required))), "ExtensionOptions' initial values and the loader's");
        });
    }

    [Test]
    public async Task TheThreeAcceptAndRejectTheSameValues()
    {
        var yaml = YamlParameters();
        var probes = ExtensionParameters.All.SelectMany(p => ProbesOf(p).Distinct().Select(v => (Parameter: p, Value: v))).ToList();
        var deploy = await DeployVerdictsAsync(probes.Where(p => !LookedUpByDeploy.Contains(p.Parameter.Name)).ToList());

        var disagreements = new List<string>();
        foreach (var (parameter, value) in probes)
        {
            var shown = $"{parameter.Name}='{value}'";
            var defined = value.Trim().Length == 0 ? !parameter.IsRequired : parameter.Accepts(value.Trim());
            var loader = LoaderAccepts(parameter.Name, value);
            if (loader != defined && !(parameter == ExtensionParameters.ModelFromTfHub && value == "true"))
            {
                disagreements.Add($"{shown}: ExtensionParameters says {Verdict(defined)}, the loader {Verdict(loader)}");
            }

            if (deploy.TryGetValue((parameter.Name, value), out var installs) && installs != loader
                && !(LoaderWider.ContainsKey(parameter.Name) && loader && !installs))
            {
                disagreements.Add($"{shown}: deploy.sh {Verdict(installs)}, the loader {Verdict(loader)}");
            }

            if (yaml.TryGetValue(parameter.Name, out var declared) && value.Trim().Length > 0 && value == value.Trim()
                && deploy.TryGetValue((parameter.Name, value), out var deployed) && declared.Accepts(value) != deployed)
            {
                disagreements.Add($"{shown}: extension.yaml {Verdict(declared.Accepts(value))}, deploy.sh {Verdict(deployed)}");
            }
        }

        Assert.That(disagreements, Is.Empty, $"{probes.Count} probes; disagreements:\n{string.Join('\n', disagreements)}");
    }

    [Test]
    public void ExtensionYamlSaysItIsAReferenceAndUsesTheSpecsV2Shape()
    {
        var yaml = YamlText;
        Assert.Multiple(() =>
        {
            Assert.That(yaml, Does.Contain("cannot be installed with `firebase ext:install`").And.Contain("Install with deploy.sh"));
            Assert.That(yaml, Does.Contain("name: reverse-image-search-dotnet"));
            Assert.That(yaml, Does.Not.Contain("eventFilterPathPatterns"), "path patterns are eventFilters with operator match-path-pattern");
            Assert.That(yaml, Does.Contain("operator: match-path-pattern"));
            Assert.That(yaml, Does.Not.Contain("role: storage.admin"), "the roles are what deploy.sh grants");
        });
    }

    private static string Verdict(bool accepts) => accepts ? "accepts" : "rejects";

    /// <summary>Values around each rule's edges, plus a shared set of text probes for every pattern.</summary>
    private static IEnumerable<string> ProbesOf(ExtensionParameter parameter)
    {
        switch (parameter)
        {
            case ChoiceParameter choice:
                foreach (var value in choice.Values)
                {
                    yield return value;
                }

                yield return "bogus";
                yield return choice.Values[0].ToUpperInvariant() == choice.Values[0] ? choice.Values[0].ToLowerInvariant() : choice.Values[0].ToUpperInvariant();
                yield return choice.Values[0] + "x";
                yield return " " + choice.Values[^1];
                yield return "";
                break;
            case IntegerParameter integer:
                foreach (var value in new long[] { integer.Min - 1, integer.Min, integer.Min + 1, integer.Max - 1, integer.Max, integer.Max + 1L, 4_294_967_296 })
                {
                    yield return value.ToString(CultureInfo.InvariantCulture);
                }

                foreach (var value in new[] { "1e3", "+5", "0x10", "1.5", "١٢", "12345678901234567890", "five", "" })
                {
                    yield return value;
                }

                break;
            case BooleanParameter:
                foreach (var value in new[] { "true", "false", "True", "FALSE", "yes", "1", "" })
                {
                    yield return value;
                }

                break;
            default:
                foreach (var value in TextProbes.Append(""))
                {
                    yield return value;
                }

                break;
        }
    }

    private static bool LoaderAccepts(string name, string value)
    {
        var values = new Dictionary<string, string>(Required) { ["PROJECT_NUMBER"] = ProjectNumber };
        foreach (var (key, context) in Context.GetValueOrDefault(name) ?? [])
        {
            values[key] = context;
        }

        values[name] = value;
        try
        {
            Load(values);
            return true;
        }
        catch (InvalidConfigurationException e) when (e.Variable == name)
        {
            return false;
        }
    }

    /// <summary>deploy.sh's verdict on each probe, by `deploy.sh check`: every probe in one bash run, to keep it quick.</summary>
    private static async Task<Dictionary<(string, string), bool>> DeployVerdictsAsync(IReadOnlyList<(ExtensionParameter Parameter, string Value)> probes)
    {
        using var temp = new TempDir();
        var driver = new StringBuilder("cd \"$1\"\nfor f in probe-*.env; do\n  if bash \"$2\" check --env-file \"$f\" >/dev/null 2>\"$f.err\"; then echo \"$f 0\"; else echo \"$f $?\"; fi\ndone\n");
        for (var i = 0; i < probes.Count; i++)
        {
            var (parameter, value) = probes[i];
            var values = new Dictionary<string, string>(Required);
            foreach (var (key, context) in Context.GetValueOrDefault(parameter.Name) ?? [])
            {
                values[key] = context;
            }

            values[parameter.Name] = value;
            temp.Write($"probe-{i:D4}.env", EnvFile(values));
        }

        var script = temp.Write("driver.sh", driver.ToString());
        var run = await ProcessRunner.RunAsync("bash", [script, temp.Path, DeployScript.ScriptPath], null, TimeSpan.FromMinutes(5));
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        var verdicts = new Dictionary<(string, string), bool>();
        foreach (var line in run.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var (file, code) = (line.Split(' ')[0], line.Split(' ')[1]);
            var (parameter, value) = probes[int.Parse(file["probe-".Length..^".env".Length], CultureInfo.InvariantCulture)];
            var error = File.ReadAllText(Path.Combine(temp.Path, file + ".err"));
            Assert.That(code is "0" || (code is "2" && error.Contains($"Invalid configuration: {parameter.Name}=", StringComparison.Ordinal)),
                $"{parameter.Name}='{value}': deploy.sh check exits {code} with: {error}");
            verdicts[(parameter.Name, value)] = code == "0";
        }

        Assert.That(verdicts, Has.Count.EqualTo(probes.Count), run.ToString());
        return verdicts;
    }

    /// <summary>An env file; values are double-quoted so spaces at either end survive (deploy.sh trims unquoted ones).</summary>
    private static string EnvFile(IReadOnlyDictionary<string, string> values) =>
        string.Concat(values.Select(kv => $"{kv.Key}=\"{kv.Value}\"\n"));

    private static Dictionary<string, string> ParseCheck(string output) =>
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(": ", 2))
            .ToDictionary(p => p[0], p => p[1].Trim('\'').Replace("''", "'", StringComparison.Ordinal));

    private static ExtensionOptions Load(IReadOnlyDictionary<string, string> values) =>
        ExtensionOptionsLoader.Load(new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value))).Build());

    private static string Serialize(ExtensionOptions options) => JsonSerializer.Serialize(options);

    private static IReadOnlySet<string> LoaderNames()
    {
        var recording = new RecordingSource();
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(Required.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)))
            .Add(recording)
            .Build();
        ExtensionOptionsLoader.Load(configuration);
        return recording.Provider.Asked;
    }

    /// <summary>What extension.yaml declares of one parameter: its literal default and its rule.</summary>
    private sealed record YamlParameter(string? Default, IReadOnlyList<string>? Options, Regex? Pattern, IntegerParameter? Range)
    {
        public bool Accepts(string value) =>
            (Options is null || Options.Contains(value)) && (Pattern is null || Pattern.IsMatch(value)) && (Range is null || Range.Accepts(value));
    }

    /// <summary>
    /// The params (default; options, except one labelled "(rejected)"; validationRegex, read as the JavaScript regex it
    /// is) and the advanced settings of the header comment ("NAME [default] {min..max}" or "{a|b}").
    /// </summary>
    private static Dictionary<string, YamlParameter> YamlParameters()
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(YamlText));
        var root = (YamlMappingNode)stream.Documents[0].RootNode;
        var result = new Dictionary<string, YamlParameter>();
        foreach (var node in ((YamlSequenceNode)root.Children[new YamlScalarNode("params")]).Cast<YamlMappingNode>())
        {
            string? Scalar(string key) => node.Children.TryGetValue(new YamlScalarNode(key), out var v) ? ((YamlScalarNode)v).Value : null;
            var name = Scalar("param")!;
            var fallback = Scalar("default");
            var options = node.Children.TryGetValue(new YamlScalarNode("options"), out var o)
                ? ((YamlSequenceNode)o).Cast<YamlMappingNode>()
                    .Where(m => !((YamlScalarNode)m.Children[new YamlScalarNode("label")]).Value!.Contains("(rejected)", StringComparison.Ordinal))
                    .Select(m => ((YamlScalarNode)m.Children[new YamlScalarNode("value")]).Value!).ToList()
                : null;
            var regex = Scalar("validationRegex") is { } pattern ? new Regex(pattern, RegexOptions.ECMAScript) : null;
            result[name] = new YamlParameter(fallback is not null && fallback.StartsWith("${", StringComparison.Ordinal) ? null : fallback, options, regex, null);
        }

        foreach (Match m in AdvancedSetting().Matches(YamlText))
        {
            var (name, fallback, rule) = (m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value);
            var range = Regex.Match(rule, @"^(\d+)\.\.(\d+)$");
            result[name] = range.Success
                ? new YamlParameter(fallback, null, null, new IntegerParameter(name, 0,
                    int.Parse(range.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(range.Groups[2].Value, CultureInfo.InvariantCulture)))
                : new YamlParameter(fallback, rule.Split('|'), null, null);
        }

        return result;
    }

    [GeneratedRegex(@"^#   ([A-Z0-9_]+)\s+\[([^\]]*)\]\s+\{([^}]*)\}", RegexOptions.Multiline)]
    private static partial Regex AdvancedSetting();

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
