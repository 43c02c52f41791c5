namespace ReverseImageSearch.Tests;

/// <summary>Where the repository and the provided material (../shared beside the repository) are.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The provided material folder beside the repository (api-specs, models, seed).</summary>
    public static string SharedMaterial
    {
        get
        {
            var path = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
            return Directory.Exists(path)
                ? path
                : throw new DirectoryNotFoundException($"The provided material is expected beside the repository at {path}.");
        }
    }

    public static string ApiSpecs => Path.Combine(SharedMaterial, "api-specs");

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ReverseImageSearch.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("ReverseImageSearch.sln not found above " + AppContext.BaseDirectory);
    }
}
