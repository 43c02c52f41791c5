using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ReverseImageSearch.Tests.Gcp.Contract;

/// <summary>One REST method of a discovery document, with the regexes its URL paths match.</summary>
public sealed class DiscoveryMethod
{
    public required DiscoveryDocument Document { get; init; }

    public required string Id { get; init; }

    public required string HttpMethod { get; init; }

    public required JsonElement Definition { get; init; }

    public required IReadOnlyList<Regex> PathPatterns { get; init; }

    /// <summary>Upload paths (mediaUpload protocols): the body is the media, or Object metadata for resumable.</summary>
    public required IReadOnlyList<Regex> UploadPatterns { get; init; }

    public string? RequestSchema => Definition.TryGetProperty("request", out var r) && r.TryGetProperty("$ref", out var rf) ? rf.GetString() : null;

    public JsonElement? Parameter(string name) =>
        Definition.TryGetProperty("parameters", out var ps) && ps.TryGetProperty(name, out var p) ? p : null;
}

/// <summary>A Google API discovery document: its methods, parameters and schemas.</summary>
public sealed partial class DiscoveryDocument
{
    private readonly JsonDocument _json;

    public DiscoveryDocument(string file)
    {
        _json = JsonDocument.Parse(File.ReadAllText(file));
        Name = Path.GetFileNameWithoutExtension(file);
        var servicePath = Root.GetProperty("servicePath").GetString() ?? "";
        var methods = new List<DiscoveryMethod>();
        Collect(Root, servicePath, methods);
        Methods = methods;
    }

    public string Name { get; }

    public JsonElement Root => _json.RootElement;

    public IReadOnlyList<DiscoveryMethod> Methods { get; }

    public JsonElement Schema(string name) =>
        Root.GetProperty("schemas").TryGetProperty(name, out var s) ? s : throw new KeyNotFoundException($"{Name}: no schema {name}");

    public JsonElement? GlobalParameter(string name) =>
        Root.TryGetProperty("parameters", out var ps) && ps.TryGetProperty(name, out var p) ? p : null;

    private void Collect(JsonElement node, string servicePath, List<DiscoveryMethod> into)
    {
        if (node.TryGetProperty("methods", out var methods))
        {
            foreach (var m in methods.EnumerateObject())
            {
                var def = m.Value;
                var patterns = new List<Regex>();
                foreach (var key in new[] { "path", "flatPath" })
                {
                    if (def.TryGetProperty(key, out var p))
                    {
                        patterns.Add(TemplateRegex("/" + servicePath + p.GetString(), def));
                    }
                }

                var uploads = new List<Regex>();
                if (def.TryGetProperty("mediaUpload", out var media) && media.TryGetProperty("protocols", out var protocols))
                {
                    foreach (var protocol in protocols.EnumerateObject())
                    {
                        uploads.Add(TemplateRegex(protocol.Value.GetProperty("path").GetString()!, def));
                    }
                }

                into.Add(new DiscoveryMethod
                {
                    Document = this,
                    Id = def.GetProperty("id").GetString()!,
                    HttpMethod = def.GetProperty("httpMethod").GetString()!,
                    Definition = def,
                    PathPatterns = patterns,
                    UploadPatterns = uploads,
                });
            }
        }

        if (node.TryGetProperty("resources", out var resources))
        {
            foreach (var r in resources.EnumerateObject())
            {
                Collect(r.Value, servicePath, into);
            }
        }
    }

    /// <summary>{+name} matches the parameter's declared pattern (or anything), {name} one path segment.</summary>
    private static Regex TemplateRegex(string template, JsonElement method)
    {
        var pattern = new System.Text.StringBuilder();
        var at = 0;
        foreach (Match m in VariableRegex().Matches(template))
        {
            pattern.Append(Regex.Escape(template[at..m.Index]));
            at = m.Index + m.Length;
            var name = m.Groups[2].Value;
            if (m.Groups[1].Value == "+")
            {
                var declared = method.TryGetProperty("parameters", out var ps) && ps.TryGetProperty(name, out var p) && p.TryGetProperty("pattern", out var pat)
                    ? pat.GetString()!.TrimStart('^').TrimEnd('$')
                    : ".+";
                pattern.Append("(?:").Append(declared).Append(')');
            }
            else
            {
                pattern.Append("[^/]+");
            }
        }

        pattern.Append(Regex.Escape(template[at..]));
        return new Regex("^" + pattern + "$", RegexOptions.CultureInvariant);
    }

    [GeneratedRegex(@"\{(\+?)([A-Za-z0-9_.]+)\}")]
    private static partial Regex VariableRegex();
}

/// <summary>Checks a JSON value against a discovery schema, strictly: unknown properties, wrong types and unlisted enum values fail.</summary>
public static class DiscoverySchemaValidator
{
    public static void Validate(DiscoveryDocument doc, JsonElement schema, JsonElement value, string path, List<string> errors)
    {
        if (schema.TryGetProperty("$ref", out var reference))
        {
            Validate(doc, doc.Schema(reference.GetString()!), value, path, errors);
            return;
        }

        var type = schema.TryGetProperty("type", out var t) ? t.GetString() : null;
        var format = schema.TryGetProperty("format", out var f) ? f.GetString() : null;
        switch (type)
        {
            case "any":
                return;
            case "object":
                ValidateObject(doc, schema, value, path, errors);
                return;
            case "array":
                if (value.ValueKind != JsonValueKind.Array)
                {
                    errors.Add($"{path}: expected an array, got {value.ValueKind}");
                    return;
                }

                var i = 0;
                foreach (var item in value.EnumerateArray())
                {
                    Validate(doc, schema.GetProperty("items"), item, $"{path}[{i++}]", errors);
                }

                return;
            case "boolean":
                if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                {
                    errors.Add($"{path}: expected a boolean, got {value.ValueKind}");
                }

                return;
            case "integer":
                if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var n))
                {
                    errors.Add($"{path}: expected an integer, got {value.GetRawText()}");
                }
                else if (format == "int32" && (n < int.MinValue || n > int.MaxValue))
                {
                    errors.Add($"{path}: {n} is out of int32 range");
                }
                else if (format == "uint32" && (n < 0 || n > uint.MaxValue))
                {
                    errors.Add($"{path}: {n} is out of uint32 range");
                }

                return;
            case "number":
                if (value.ValueKind == JsonValueKind.Number
                    || (value.ValueKind == JsonValueKind.String && value.GetString() is "NaN" or "Infinity" or "-Infinity"))
                {
                    return;
                }

                errors.Add($"{path}: expected a number, got {value.GetRawText()}");
                return;
            case "string":
                ValidateString(schema, format, value, path, errors);
                return;
            default:
                errors.Add($"{path}: schema without a known type ({schema.GetRawText()[..Math.Min(80, schema.GetRawText().Length)]})");
                return;
        }
    }

    private static void ValidateObject(DiscoveryDocument doc, JsonElement schema, JsonElement value, string path, List<string> errors)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{path}: expected an object, got {value.ValueKind}");
            return;
        }

        var properties = schema.TryGetProperty("properties", out var ps) ? ps : (JsonElement?)null;
        var additional = schema.TryGetProperty("additionalProperties", out var ap) ? ap : (JsonElement?)null;
        foreach (var property in value.EnumerateObject())
        {
            var at = $"{path}.{property.Name}";
            if (properties is { } declared && declared.TryGetProperty(property.Name, out var propertySchema))
            {
                if (propertySchema.TryGetProperty("readOnly", out var ro) && ro.ValueKind == JsonValueKind.True)
                {
                    errors.Add($"{at}: output-only field sent in a request");
                }

                Validate(doc, propertySchema, property.Value, at, errors);
            }
            else if (additional is { } a)
            {
                Validate(doc, a, property.Value, at, errors);
            }
            else
            {
                errors.Add($"{at}: unknown property");
            }
        }
    }

    private static void ValidateString(JsonElement schema, string? format, JsonElement value, string path, List<string> errors)
    {
        if (schema.TryGetProperty("enum", out var values))
        {
            var allowed = values.EnumerateArray().Select(v => v.GetString()).ToArray();
            if (value.ValueKind == JsonValueKind.Null && allowed is ["NULL_VALUE"])
            {
                return; // google.protobuf.NullValue: JSON null.
            }

            if (value.ValueKind != JsonValueKind.String || !allowed.Contains(value.GetString()))
            {
                errors.Add($"{path}: {value.GetRawText()} is not one of [{string.Join(", ", allowed)}]");
            }

            return;
        }

        if (format is "int64" or "uint64")
        {
            var ok = value.ValueKind switch
            {
                JsonValueKind.String => format == "int64"
                    ? long.TryParse(value.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)
                    : ulong.TryParse(value.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out _),
                JsonValueKind.Number => value.TryGetInt64(out var l) && (format == "int64" || l >= 0),
                _ => false,
            };
            if (!ok)
            {
                errors.Add($"{path}: expected an {format} (string or integer), got {value.GetRawText()}");
            }

            return;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            errors.Add($"{path}: expected a string, got {value.GetRawText()}");
            return;
        }

        var text = value.GetString()!;
        switch (format)
        {
            case "byte":
                if (!IsBase64(text))
                {
                    errors.Add($"{path}: not base64: {text}");
                }

                break;
            case "google-datetime" or "date-time":
                if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out _) || !(text.EndsWith('Z') || text.Contains('+', StringComparison.Ordinal) || text.LastIndexOf('-') > 10))
                {
                    errors.Add($"{path}: not an RFC 3339 timestamp: {text}");
                }

                break;
            case "google-duration":
                if (!Regex.IsMatch(text, @"^-?\d+(\.\d{1,9})?s$", RegexOptions.CultureInvariant))
                {
                    errors.Add($"{path}: not a duration: {text}");
                }

                break;
        }
    }

    private static bool IsBase64(string text)
    {
        var normal = text.Replace('-', '+').Replace('_', '/');
        var buffer = new byte[normal.Length];
        return Convert.TryFromBase64String(normal.PadRight(normal.Length + ((4 - (normal.Length % 4)) % 4), '='), buffer, out _);
    }
}
