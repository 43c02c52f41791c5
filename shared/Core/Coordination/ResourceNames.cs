namespace ReverseImageSearch.Core.Coordination;

/// <summary>Comparisons of Google resource names that may spell the project by id or by number.</summary>
public static class ResourceNames
{
    /// <summary>True when both names end in the same ".../locations/..." path.</summary>
    public static bool Same(string? a, string? b)
    {
        if (a is null || b is null)
        {
            return false;
        }

        return string.Equals(LocationPath(a), LocationPath(b), StringComparison.Ordinal);
    }

    /// <summary>The index an operation of CreateIndex belongs to: the part before "/operations/".</summary>
    public static string OwnerOfOperation(string operationName)
    {
        var at = operationName.IndexOf("/operations/", StringComparison.Ordinal);
        return at < 0 ? operationName : operationName[..at];
    }

    private static string LocationPath(string name)
    {
        var at = name.IndexOf("locations/", StringComparison.Ordinal);
        return at < 0 ? name : name[at..];
    }
}
