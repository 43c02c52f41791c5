using System.Diagnostics;
using System.Text;

namespace ReverseImageSearch.Tests.Deploy;

/// <summary>The outcome of one run of a process.</summary>
public sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>The "+ " lines of a dry run, each read back into its words the way a shell would.</summary>
    public IReadOnlyList<PlannedCommand> Plan =>
        StandardOutput.Split('\n')
            .Where(line => line.StartsWith("+ ", StringComparison.Ordinal))
            .Select(line => new PlannedCommand(line[2..], ShellWords.Split(line[2..])))
            .ToList();

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{StandardOutput}\n--- stderr\n{StandardError}";
}

/// <summary>One command of a plan: the printed line and its words.</summary>
public sealed record PlannedCommand(string Line, IReadOnlyList<string> Words)
{
    public bool IsGcloud => Words.Count > 0 && Words[0] == "gcloud";

    /// <summary>True when the command starts with these words, e.g. "gcloud", "functions", "deploy".</summary>
    public bool Is(params string[] prefix) => Words.Count >= prefix.Length && prefix.SequenceEqual(Words.Take(prefix.Length));

    public bool Has(string word) => Words.Contains(word);

    /// <summary>Values of a --flag=value option (every occurrence).</summary>
    public IReadOnlyList<string> Values(string flag) =>
        Words.Where(w => w.StartsWith(flag + "=", StringComparison.Ordinal)).Select(w => w[(flag.Length + 1)..]).ToList();

    public string? Value(string flag) => Values(flag) is [var single] ? single : null;

    public override string ToString() => Line;
}

/// <summary>Runs deploy.sh and other processes for the deploy tests.</summary>
public static class DeployScript
{
    public static string ScriptPath => Path.Combine(TestPaths.RepoRoot, "deploy.sh");

    public static string SampleEnv => Path.Combine(TestPaths.RepoRoot, "deploy", "sample.env");

    public static string SampleEnvText => File.ReadAllText(SampleEnv);

    /// <summary>
    /// The sample env with INDEX_BACKEND=vertex (the sample installs Firestore vector search), written into
    /// <paramref name="directory"/>: the plans of the Vertex AI backend.
    /// </summary>
    public static string VertexSampleEnv(string directory)
    {
        var path = System.IO.Path.Combine(directory, "vertex.env");
        File.WriteAllText(path, SampleWith(new Dictionary<string, string?> { ["INDEX_BACKEND"] = "vertex" }));
        return path;
    }

    /// <summary>Runs deploy.sh with bash; <paramref name="tempDir"/> becomes TMPDIR so generated files land there.</summary>
    public static Task<ProcessResult> RunAsync(string tempDir, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var env = new Dictionary<string, string>(environment ?? new Dictionary<string, string>()) { ["TMPDIR"] = tempDir };
        return ProcessRunner.RunAsync("bash", [ScriptPath, .. args], env, TimeSpan.FromSeconds(120));
    }

    /// <summary>The sample env with keys replaced (null value: the key's line removed) and extra keys appended.</summary>
    public static string SampleWith(IReadOnlyDictionary<string, string?> changes)
    {
        var lines = new List<string>();
        foreach (var line in SampleEnvText.Split('\n'))
        {
            var key = line.Split('=', 2)[0].Trim();
            if (!line.TrimStart().StartsWith('#') && changes.ContainsKey(key))
            {
                continue;
            }

            lines.Add(line);
        }

        lines.AddRange(changes.Where(c => c.Value is not null).Select(c => $"{c.Key}={c.Value}"));
        return string.Join('\n', lines) + "\n";
    }
}

public static class ProcessRunner
{
    public static async Task<ProcessResult> RunAsync(
        string fileName, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment, TimeSpan timeout, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {fileName}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', info.ArgumentList)} did not finish within {timeout}");
        }

        return new ProcessResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>The full path of a program on PATH, or null.</summary>
    public static string? Find(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program))
            .FirstOrDefault(File.Exists);
}

/// <summary>Splits a command line into words as a POSIX shell does (quotes and backslashes; no expansions).</summary>
public static class ShellWords
{
    public static IReadOnlyList<string> Split(string line)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        var inWord = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            switch (c)
            {
                case ' ' or '\t':
                    if (inWord)
                    {
                        words.Add(current.ToString());
                        current.Clear();
                        inWord = false;
                    }

                    break;
                case '\'':
                    inWord = true;
                    var close = line.IndexOf('\'', i + 1);
                    if (close < 0)
                    {
                        throw new FormatException($"unterminated single quote in: {line}");
                    }

                    current.Append(line, i + 1, close - i - 1);
                    i = close;
                    break;
                case '"':
                    inWord = true;
                    for (i++; ; i++)
                    {
                        if (i >= line.Length)
                        {
                            throw new FormatException($"unterminated double quote in: {line}");
                        }

                        if (line[i] == '"')
                        {
                            break;
                        }

                        if (line[i] == '\\' && i + 1 < line.Length && line[i + 1] is '"' or '\\' or '$' or '`')
                        {
                            i++;
                        }

                        current.Append(line[i]);
                    }

                    break;
                case '\\' when i + 1 < line.Length:
                    inWord = true;
                    current.Append(line[++i]);
                    break;
                default:
                    inWord = true;
                    current.Append(c);
                    break;
            }
        }

        if (inWord)
        {
            words.Add(current.ToString());
        }

        return words;
    }
}

/// <summary>A temporary directory deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ris-deploy-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Write(string name, string text)
    {
        var file = System.IO.Path.Combine(Path, name);
        File.WriteAllText(file, text);
        return file;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}
