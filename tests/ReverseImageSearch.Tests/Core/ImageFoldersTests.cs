using ReverseImageSearch.Core.Coordination;

namespace ReverseImageSearch.Tests.Core;

public sealed class ImageFoldersTests
{
    [TestCase("x.jpg", new string[0])]
    [TestCase("a/x.jpg", new[] { "a" })]
    [TestCase("a/b/c/x.jpg", new[] { "a", "a/b", "a/b/c" })]
    [TestCase("/x.jpg", new string[0])]
    [TestCase("a//x.jpg", new[] { "a", "a/" })]
    [TestCase("é ü/#?%/x.jpg", new[] { "é ü", "é ü/#?%" })]
    public void AnObjectIsUnderEveryFolderAboveIt(string objectName, string[] folders)
    {
        Assert.That(ImageFolders.Of(objectName), Is.EqualTo(folders));
        // Contains is the local index's test of the same relation: they must agree on every folder and its look-alikes.
        foreach (var folder in folders)
        {
            Assert.That(ImageFolders.Contains(folder, objectName), Is.True, folder);
        }

        foreach (var lookAlike in folders.Select(f => f + "x").Append(objectName).Append("").Append("a/x"))
        {
            Assert.That(ImageFolders.Contains(lookAlike, objectName), Is.EqualTo(folders.Contains(lookAlike)), lookAlike);
        }
    }

    [TestCase("a/b", "a/b")]
    [TestCase("/a/b/", "a/b")]
    [TestCase("//", "")]
    [TestCase("", "")]
    public void AFolderIsStoredWithoutTheSlashesAroundIt(string written, string stored) =>
        Assert.That(ImageFolders.Normalize(written), Is.EqualTo(stored));
}
