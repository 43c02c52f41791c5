using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.Storage;
using ReverseImageSearch.Tests.Local.Fakes;

namespace ReverseImageSearch.Tests.Local.Storage;

public class LocalObjectStoreTests
{
    private TempDirectory _temp = null!;
    private string _imagesRoot = null!;
    private LocalObjectStore _store = null!;

    [SetUp]
    public void SetUp()
    {
        _temp = new TempDirectory();
        _imagesRoot = _temp.Sub("my-images");
        _store = new LocalObjectStore(new Dictionary<string, string> { ["images"] = _imagesRoot }, _temp.Sub("buckets"), NullLogger<LocalObjectStore>.Instance);
    }

    [TearDown]
    public void TearDown() => _temp.Dispose();

    [Test]
    public async Task MappedBucketIsItsFolderAndOtherBucketsLiveUnderTheParent()
    {
        await _store.WriteAsync("images", "a/b.png", Bytes("png"), "image/png");
        await _store.WriteAsync("other", "x.json", Bytes("{}"), "application/json");

        Assert.That(File.ReadAllText(Path.Combine(_imagesRoot, "a", "b.png")), Is.EqualTo("png"));
        Assert.That(File.ReadAllText(Path.Combine(_temp.Sub("buckets"), "other", "x.json")), Is.EqualTo("{}"));
    }

    [Test]
    public async Task ListReturnsObjectsUnderThePrefixInOrdinalOrderSkippingHiddenFiles()
    {
        foreach (var name in new[] { "photos/b.jpg", "photos/B.jpg", "photos/a/z.png", "photosx.jpg", "top.gif" })
        {
            await _store.WriteAsync("images", name, Bytes(name), "image/jpeg");
        }

        Directory.CreateDirectory(Path.Combine(_imagesRoot, "photos", ".cache"));
        File.WriteAllText(Path.Combine(_imagesRoot, "photos", ".cache", "c.jpg"), "hidden");
        File.WriteAllText(Path.Combine(_imagesRoot, "photos", ".partial.jpg.tmp"), "temp");

        var underPhotos = await NamesAsync("photos/");
        var all = await NamesAsync(null);
        var byPartialName = await NamesAsync("photos");

        Assert.That(underPhotos, Is.EqualTo(new[] { "photos/B.jpg", "photos/a/z.png", "photos/b.jpg" }));
        Assert.That(all, Is.EqualTo(new[] { "photos/B.jpg", "photos/a/z.png", "photos/b.jpg", "photosx.jpg", "top.gif" }));
        Assert.That(byPartialName, Is.EqualTo(new[] { "photos/B.jpg", "photos/a/z.png", "photos/b.jpg", "photosx.jpg" }));
        Assert.That(await NamesAsync("nothing/here/"), Is.Empty);
    }

    [Test]
    public async Task MetadataReportsSizeContentTypeAndTheContentsMd5()
    {
        var content = Encoding.UTF8.GetBytes("some image bytes");
        var written = await _store.WriteAsync("images", "cat.JPEG", content, "ignored/type");
        var read = await _store.GetMetadataAsync("images", "cat.JPEG");

        Assert.That(read, Is.Not.Null);
        Assert.That(read!.Size, Is.EqualTo(content.Length));
        Assert.That(read.ContentType, Is.EqualTo("image/jpeg"));
        Assert.That(read.Md5Hash, Is.EqualTo(Convert.ToBase64String(MD5.HashData(content))));
        Assert.That(read.Metageneration, Is.EqualTo(1));
        Assert.That(read.Bucket, Is.EqualTo("images"));
        Assert.That(read.Name, Is.EqualTo("cat.JPEG"));
        Assert.That(written, Is.EqualTo(read));
    }

    [TestCase("a.png", "image/png")]
    [TestCase("a.gif", "image/gif")]
    [TestCase("a.bmp", "image/bmp")]
    [TestCase("a.webp", "image/webp")]
    [TestCase("a.jpg", "image/jpeg")]
    [TestCase("datapoints/1.json", "application/json")]
    [TestCase("README", "application/octet-stream")]
    public async Task ContentTypeComesFromTheExtension(string name, string expected)
    {
        var stored = await _store.WriteAsync("images", name, Bytes("x"), "text/plain");
        Assert.That(stored.ContentType, Is.EqualTo(expected));
    }

    [Test]
    public async Task MetadataOfAFileCopiedInByHandIsComputed()
    {
        var content = new byte[] { 1, 2, 3, 4, 5 };
        Directory.CreateDirectory(_imagesRoot);
        File.WriteAllBytes(Path.Combine(_imagesRoot, "dropped.png"), content);

        var stored = await _store.GetMetadataAsync("images", "dropped.png");

        Assert.That(stored!.Md5Hash, Is.EqualTo(Convert.ToBase64String(MD5.HashData(content))));
        Assert.That(await _store.GetMetadataAsync("images", "absent.png"), Is.Null);
    }

    [Test]
    public async Task OverwriteReplacesContentAndIncreasesGenerationAndMd5Follows()
    {
        var first = await _store.WriteAsync("images", "a.png", Bytes("one"), "image/png");
        var second = await _store.WriteAsync("images", "a.png", Bytes("two!"), "image/png");
        var third = await _store.WriteAsync("images", "a.png", Bytes("three"), "image/png");

        Assert.That(second.Generation, Is.GreaterThan(first.Generation));
        Assert.That(third.Generation, Is.GreaterThan(second.Generation));
        Assert.That(Encoding.UTF8.GetString(await _store.ReadAsync("images", "a.png")), Is.EqualTo("three"));
        var metadata = await _store.GetMetadataAsync("images", "a.png");
        Assert.That(metadata!.Md5Hash, Is.EqualTo(Convert.ToBase64String(MD5.HashData(Bytes("three").ToArray()))));
        Assert.That(metadata.Generation, Is.EqualTo(third.Generation));
    }

    [Test]
    public async Task WriteLeavesNoTempFileBehindAndCreatesFolders()
    {
        await _store.WriteAsync("images", "deep/er/still/x.png", Bytes("x"), "image/png");
        await _store.WriteAsync("images", "deep/er/still/x.png", Bytes("y"), "image/png");

        var files = Directory.GetFiles(_imagesRoot, "*", SearchOption.AllDirectories);
        Assert.That(files.Select(Path.GetFileName), Is.EqualTo(new[] { "x.png" }));
    }

    [Test]
    public async Task ReadOfAMissingObjectThrowsObjectNotFound()
    {
        var error = Assert.ThrowsAsync<ObjectNotFoundException>(() => _store.ReadAsync("images", "missing/x.png"));
        Assert.That(error!.Name, Is.EqualTo("missing/x.png"));
        await Task.CompletedTask;
    }

    [Test]
    public async Task DeleteRemovesTheObjectAndReportsWhetherItExisted()
    {
        await _store.WriteAsync("images", "a.png", Bytes("x"), "image/png");

        Assert.That(await _store.DeleteAsync("images", "a.png"), Is.True);
        Assert.That(await _store.DeleteAsync("images", "a.png"), Is.False);
        Assert.That(await _store.DeleteAsync("images", "never/was.png"), Is.False);
        Assert.That(await _store.GetMetadataAsync("images", "a.png"), Is.Null);
    }

    [TestCase("../escape.png")]
    [TestCase("a/../../escape.png")]
    [TestCase("/etc/passwd")]
    [TestCase("a\\b.png")]
    [TestCase("a//b.png")]
    [TestCase("")]
    public void NamesThatCouldEscapeTheBucketAreRejected(string name)
    {
        Assert.ThrowsAsync(Is.InstanceOf<ArgumentException>(), () => _store.WriteAsync("images", name, Bytes("x"), "image/png"));
        Assert.ThrowsAsync(Is.InstanceOf<ArgumentException>(), () => _store.ReadAsync("images", name));
        Assert.ThrowsAsync(Is.InstanceOf<ArgumentException>(), () => _store.DeleteAsync("images", name));
        Assert.That(File.Exists(Path.Combine(_temp.Path, "escape.png")), Is.False);
    }

    [Test]
    public void BucketNamesThatCouldEscapeTheParentAreRejected() =>
        Assert.ThrowsAsync(Is.InstanceOf<ArgumentException>(), () => _store.WriteAsync("..", "x.png", Bytes("x"), "image/png"));

    [Test]
    public async Task LinksLeavingTheFolderAreNeitherListedNorRead()
    {
        var outside = Directory.CreateDirectory(_temp.Sub("outside")).FullName;
        File.WriteAllText(Path.Combine(outside, "passwd"), "secret");
        File.WriteAllText(Path.Combine(outside, "photo.jpg"), "outside image");
        await _store.WriteAsync("images", "inside.jpg", Bytes("inside"), "image/jpeg");
        Directory.CreateSymbolicLink(Path.Combine(_imagesRoot, "etcdir"), outside);
        File.CreateSymbolicLink(Path.Combine(_imagesRoot, "linked.jpg"), Path.Combine(outside, "photo.jpg"));
        File.CreateSymbolicLink(Path.Combine(_imagesRoot, "relative.jpg"), Path.Combine("..", "outside", "photo.jpg"));

        Assert.That(await NamesAsync(null), Is.EqualTo(new[] { "inside.jpg" }));
        Assert.That(await NamesAsync("etcdir/"), Is.Empty);
        foreach (var name in new[] { "etcdir/passwd", "linked.jpg", "relative.jpg" })
        {
            Assert.That(await _store.GetMetadataAsync("images", name), Is.Null, name);
            Assert.ThrowsAsync<ObjectNotFoundException>(() => _store.ReadAsync("images", name), name);
        }

        Assert.ThrowsAsync<ObjectNotFoundException>(() => _store.WriteAsync("images", "etcdir/new.jpg", Bytes("x"), "image/jpeg"));
        Assert.That(await _store.DeleteAsync("images", "etcdir/passwd"), Is.False);
        Assert.That(File.Exists(Path.Combine(outside, "new.jpg")), Is.False);
        Assert.That(File.ReadAllText(Path.Combine(outside, "passwd")), Is.EqualTo("secret"));
    }

    [Test]
    public async Task ALinkToAFileInsideTheFolderIsAnObjectButLinkedFoldersAreNotEntered()
    {
        await _store.WriteAsync("images", "real/a.jpg", Bytes("a"), "image/jpeg");
        File.CreateSymbolicLink(Path.Combine(_imagesRoot, "alias.jpg"), Path.Combine("real", "a.jpg"));
        Directory.CreateSymbolicLink(Path.Combine(_imagesRoot, "real", "loop"), _imagesRoot);

        Assert.That(await NamesAsync(null), Is.EqualTo(new[] { "alias.jpg", "real/a.jpg" }));
        Assert.That(await _store.ReadAsync("images", "alias.jpg"), Is.EqualTo(Encoding.UTF8.GetBytes("a")));
    }

    private static ReadOnlyMemory<byte> Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private async Task<List<string>> NamesAsync(string? prefix)
    {
        var names = new List<string>();
        await foreach (var stored in _store.ListAsync("images", prefix))
        {
            names.Add(stored.Name);
        }

        return names;
    }
}
