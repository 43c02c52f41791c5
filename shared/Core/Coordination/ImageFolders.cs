namespace ReverseImageSearch.Core.Coordination;

/// <summary>
/// Folders of a bucket as the callable's <c>folder</c> names them: "a/b" holds "a/b/x.jpg" and "a/b/c/y.jpg", not
/// "a/bc.jpg". Every datapoint is written with all its ancestor folders, so a search under any folder is one
/// equality test per datapoint on every engine (a Vertex AI restrict token, a Firestore array-contains prefilter).
/// </summary>
public static class ImageFolders
{
    /// <summary>Longest folder accepted: an object name's own limit (Cloud Storage, 1024 bytes of UTF-8).</summary>
    public const int MaxFolderBytes = 1024;

    /// <summary>The namespace of the folder tokens among a Vertex AI datapoint's restricts (API calls and datapoint files).</summary>
    public const string TokenNamespace = "folder";

    /// <summary>Every folder above <paramref name="objectName"/>, outermost first: "a/b/x.jpg" is under "a" and "a/b".</summary>
    public static IReadOnlyList<string> Of(string objectName)
    {
        ArgumentNullException.ThrowIfNull(objectName);
        var folders = new List<string>();
        for (var slash = objectName.IndexOf('/', StringComparison.Ordinal); slash >= 0; slash = objectName.IndexOf('/', slash + 1))
        {
            // "a//b.jpg" is under "a" and "a/" as Cloud Storage lists it; an empty first segment ("/x.jpg") is no folder.
            if (slash > 0)
            {
                folders.Add(objectName[..slash]);
            }
        }

        return folders;
    }

    /// <summary>Whether <paramref name="objectName"/> is under <paramref name="folder"/> (as <see cref="Of"/> lists it).</summary>
    public static bool Contains(string folder, string objectName)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(objectName);
        return folder.Length > 0
            && objectName.Length > folder.Length
            && objectName[folder.Length] == '/'
            && objectName.StartsWith(folder, StringComparison.Ordinal);
    }

    /// <summary>
    /// The folder a caller wrote, as stored: without the slashes around it ("/a/b/" is "a/b"). Empty (the whole bucket)
    /// when nothing is left.
    /// </summary>
    public static string Normalize(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        return folder.Trim('/');
    }
}
