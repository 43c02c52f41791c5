using Microsoft.Extensions.Configuration;
using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Tests;

/// <summary>Options loaded as a function loads them, from the required parameters plus the ones a test sets.</summary>
public static class TestOptions
{
    public static ExtensionOptions Load(params (string Key, string Value)[] extra)
    {
        var values = new Dictionary<string, string?>
        {
            ["PROJECT_ID"] = "demo-project",
            ["EXT_INSTANCE_ID"] = "ris",
            ["LOCATION"] = "us-central1",
            ["IMG_BUCKET"] = "photos",
        };
        foreach (var (key, value) in extra)
        {
            values[key] = value;
        }

        return ExtensionOptionsLoader.Load(new ConfigurationBuilder().AddInMemoryCollection(values).Build());
    }
}
