using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using System.Text;
using ReverseImageSearch.Core.Coordination;

namespace ReverseImageSearch.Emulator;

/// <summary>
/// The rules of the command line's values. A broken rule becomes one line naming the argument, the value
/// and the rule (<see cref="Report"/>), exit code 2, before anything starts.
/// </summary>
public static class ArgumentRules
{
    public const int UsageError = 2;

    /// <summary>Prints the one line and returns the exit code of a wrong argument.</summary>
    public static int Report(string problem)
    {
        Console.Error.WriteLine("Invalid argument: " + problem);
        return UsageError;
    }

    public static string Describe(string argument, string value, string rule) => $"{argument}='{value}' {rule}";

    /// <summary>A whole number within [min, max]; anything else is an error naming the option.</summary>
    public static Func<ArgumentResult, int> WholeNumber(int min, int max) => result =>
    {
        var value = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        if (int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number) && number >= min && number <= max)
        {
            return number;
        }

        result.AddError(Describe(NameOf(result), value, $"must be a whole number from {min} to {max}"));
        return default;
    };

    /// <summary>An existing folder, relative paths taken from the working directory and a leading ~ as the home folder.</summary>
    public static DirectoryInfo? ExistingFolder(ArgumentResult result)
    {
        var value = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        var folder = new DirectoryInfo(ExpandHome(value));
        if (!folder.Exists)
        {
            result.AddError(Describe(NameOf(result), value, $"must be an existing folder ({folder.FullName} does not exist)"));
        }

        return folder;
    }

    /// <summary>A folder that need not exist yet (it is created), resolved as <see cref="ExistingFolder"/> does.</summary>
    public static DirectoryInfo? Folder(ArgumentResult result) =>
        new(ExpandHome(result.Tokens.Count > 0 ? result.Tokens[0].Value : ""));

    /// <summary>Files or folders that exist, resolved as <see cref="ExistingFolder"/> does.</summary>
    public static string[] ExistingPaths(ArgumentResult result)
    {
        var paths = result.Tokens.Select(token => ExpandHome(token.Value)).ToArray();
        foreach (var (token, path) in result.Tokens.Zip(paths))
        {
            if (!File.Exists(path) && !Directory.Exists(path))
            {
                result.AddError(Describe(NameOf(result), token.Value, $"must be an existing image file or folder ({Path.GetFullPath(path)} does not exist)"));
                break;
            }
        }

        return paths;
    }

    /// <summary>Names of stored objects (the callable's "paths"): not empty, at most an object name's 1024 bytes, anything else allowed.</summary>
    public static string[] StoredObjectNames(ArgumentResult result)
    {
        foreach (var token in result.Tokens)
        {
            if (token.Value.Length == 0 || Encoding.UTF8.GetByteCount(token.Value) > ImageFolders.MaxFolderBytes)
            {
                result.AddError(Describe(NameOf(result), token.Value, $"must be the name of a stored image: 1 to {ImageFolders.MaxFolderBytes} bytes"));
                break;
            }
        }

        return result.Tokens.Select(token => token.Value).ToArray();
    }

    /// <summary>A folder of the images folder as the callable's "folder" takes it: at most 1024 bytes, slashes around it ignored.</summary>
    public static string? FolderName(ArgumentResult result)
    {
        var value = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        if (Encoding.UTF8.GetByteCount(value) > ImageFolders.MaxFolderBytes)
        {
            result.AddError(Describe(NameOf(result), value, $"must be a folder name no longer than {ImageFolders.MaxFolderBytes} bytes"));
        }

        return value;
    }

    public static string OneOf(ArgumentResult result, params string[] allowed)
    {
        var value = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        if (!allowed.Contains(value, StringComparer.Ordinal))
        {
            result.AddError(Describe(NameOf(result), value, "must be one of " + string.Join(", ", allowed)));
        }

        return value;
    }

    /// <summary>Web page origins (scheme://host[:port], http or https, no path), each as a browser sends it in Origin.</summary>
    public static string[] WebOrigins(ArgumentResult result)
    {
        var origins = result.Tokens.Select(token => token.Value).ToArray();
        foreach (var origin in origins)
        {
            var trimmed = origin.EndsWith('/') ? origin[..^1] : origin;
            if (!Uri.TryCreate(trimmed, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.UserInfo.Length > 0
                || uri.PathAndQuery != "/" || uri.Fragment.Length > 0 || trimmed.EndsWith('/'))
            {
                result.AddError(Describe(NameOf(result), origin, "must be a web origin scheme://host[:port] (http or https, no path), such as https://app.example"));
                break;
            }
        }

        return origins;
    }

    /// <summary>An IP address or localhost: the address the emulator listens on.</summary>
    public static string ListenAddress(ArgumentResult result)
    {
        var value = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        if (value != "localhost" && !IPAddress.TryParse(value, out _))
        {
            result.AddError(Describe(NameOf(result), value, "must be an IP address such as 127.0.0.1, 0.0.0.0 or ::1, or localhost"));
        }

        return value;
    }

    private static string ExpandHome(string path) =>
        path == "~" || path.StartsWith("~/", StringComparison.Ordinal)
            ? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) + path[1..]
            : path;

    private static string NameOf(ArgumentResult result) => result.Parent switch
    {
        OptionResult option => option.Option.Name,
        _ => result.Argument.Name,
    };
}
