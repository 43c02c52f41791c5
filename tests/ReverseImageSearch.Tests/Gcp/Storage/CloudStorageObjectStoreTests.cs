using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Gcp.Storage;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp.Storage;

public sealed class CloudStorageObjectStoreTests : ContractTestBase
{
    private ServiceProvider _services = null!;
    private FakeCloudStorage _storage = null!;
    private IObjectStore _store = null!;

    [SetUp]
    public void CreateStore()
    {
        _storage = new FakeCloudStorage(Server);
        _services = GcpTestHost.Build(Server, a =>
        {
            a.ListPageSize = 2;
            a.ResumableUploadThreshold = 64;
        });
        _store = _services.GetRequiredService<IObjectStore>();
    }

    [TearDown]
    public void DisposeServices() => _services.Dispose();

    [Test]
    public void TheRegisteredStoreIsTheCloudStorageAdapter() =>
        Assert.That(_store, Is.InstanceOf<CloudStorageObjectStore>());

    [Test]
    public async Task ListPagesThroughEveryObjectUnderThePrefixWithTrimmedFields()
    {
        foreach (var name in new[] { "img/a.jpg", "img/b.jpg", "img/sub/c.png", "other/d.jpg", "img/e.gif" })
        {
            _storage.Put("images", name, Encoding.UTF8.GetBytes(name));
        }

        var listed = new List<StoredObject>();
        await foreach (var o in _store.ListAsync("images", "img/"))
        {
            listed.Add(o);
        }

        Assert.That(listed.Select(o => o.Name), Is.EqualTo(new[] { "img/a.jpg", "img/b.jpg", "img/e.gif", "img/sub/c.png" }));
        var first = listed[0];
        Assert.Multiple(() =>
        {
            Assert.That(first.Bucket, Is.EqualTo("images"));
            Assert.That(first.Size, Is.EqualTo("img/a.jpg".Length));
            Assert.That(first.ContentType, Is.EqualTo("image/jpeg"));
            Assert.That(first.Md5Hash, Is.EqualTo(Convert.ToBase64String(MD5.HashData(Encoding.UTF8.GetBytes("img/a.jpg")))));
            Assert.That(first.Crc32c, Is.EqualTo("AAAAAA=="));
            Assert.That(first.Generation, Is.GreaterThan(1000));
            Assert.That(first.Metageneration, Is.EqualTo(1));
            Assert.That(first.Updated, Is.EqualTo(new DateTimeOffset(2026, 3, 4, 5, 6, 7, 123, TimeSpan.Zero)));
        });
        var requests = Server.RequestsOf("storage.objects.list");
        Assert.That(requests, Has.Count.EqualTo(2));
        Assert.That(requests[0].QueryValue("pageToken"), Is.Null);
        Assert.That(requests[1].QueryValue("pageToken"), Is.EqualTo("2"));
        Assert.That(requests.Select(r => r.QueryValue("prefix")), Is.All.EqualTo("img/"));
        Assert.That(requests[0].QueryValue("fields"),
            Is.EqualTo("items(name,bucket,size,contentType,md5Hash,crc32c,generation,metageneration,updated),nextPageToken"));
    }

    [Test]
    public async Task ListOfAnEmptyBucketWithoutPrefixGivesNothing()
    {
        var count = 0;
        await foreach (var unused in _store.ListAsync("images", null))
        {
            count++;
        }

        Assert.That(count, Is.Zero);
        Assert.That(Server.RequestsOf("storage.objects.list").Single().QueryValue("prefix"), Is.Null);
    }

    [Test]
    public async Task MetadataOfANameWithSlashesAndSpacesUsesOneEncodedSegment()
    {
        _storage.Put("images", "a dir/b+c.jpg", [1, 2, 3], "image/png");
        var meta = await _store.GetMetadataAsync("images", "a dir/b+c.jpg");
        Assert.That(meta, Is.Not.Null);
        Assert.That(meta!.Name, Is.EqualTo("a dir/b+c.jpg"));
        Assert.That(meta.Size, Is.EqualTo(3));
        Assert.That(Server.RequestsOf("storage.objects.get").Single().RawPath, Is.EqualTo("/storage/v1/b/images/o/a%20dir%2Fb%2Bc.jpg"));
    }

    [Test]
    public async Task MetadataOfAMissingObjectIsNull() =>
        Assert.That(await _store.GetMetadataAsync("images", "missing.jpg"), Is.Null);

    [Test]
    public async Task ReadDownloadsTheMediaAndAMissingObjectThrowsObjectNotFound()
    {
        _storage.Put("images", "x/y.jpg", [9, 8, 7]);
        Assert.That(await _store.ReadAsync("images", "x/y.jpg"), Is.EqualTo(new byte[] { 9, 8, 7 }));
        Assert.That(Server.RequestsOf("storage.objects.get").Single().QueryValue("alt"), Is.EqualTo("media"));
        var e = Assert.ThrowsAsync<ObjectNotFoundException>(() => _store.ReadAsync("images", "x/none.jpg"));
        Assert.That(e!.Name, Is.EqualTo("x/none.jpg"));
    }

    [Test]
    public async Task SmallContentIsOneMediaUpload()
    {
        var written = await _store.WriteAsync("emb", "datapoints/t1.json", Encoding.UTF8.GetBytes("{\"id\":\"a\"}\n"), "application/json");
        var request = Server.RequestsOf("storage.objects.insert").Single();
        Assert.Multiple(() =>
        {
            Assert.That(request.RawPath, Is.EqualTo("/upload/storage/v1/b/emb/o"));
            Assert.That(request.QueryValue("uploadType"), Is.EqualTo("media"));
            Assert.That(request.QueryValue("name"), Is.EqualTo("datapoints/t1.json"));
            Assert.That(request.ContentType, Is.EqualTo("application/json"));
            Assert.That(written.Name, Is.EqualTo("datapoints/t1.json"));
            Assert.That(written.Size, Is.EqualTo(11));
            Assert.That(_storage.Content("emb", "datapoints/t1.json"), Is.EqualTo(Encoding.UTF8.GetBytes("{\"id\":\"a\"}\n")));
        });
    }

    [Test]
    public async Task ContentAboveTheThresholdUsesAResumableSession()
    {
        var data = Enumerable.Range(0, 1000).Select(i => (byte)i).ToArray();
        var written = await _store.WriteAsync("emb", "big/file.bin", data, "application/octet-stream");
        var start = Server.RequestsOf("storage.objects.insert").Single();
        var put = Server.RequestsOf(ContractServer.UploadSessionMethod).Single();
        Assert.Multiple(() =>
        {
            Assert.That(start.HttpMethod, Is.EqualTo("POST"));
            Assert.That(start.QueryValue("uploadType"), Is.EqualTo("resumable"));
            Assert.That(start.Json.GetProperty("name").GetString(), Is.EqualTo("big/file.bin"));
            Assert.That(start.Headers["X-Upload-Content-Type"].ToString(), Is.EqualTo("application/octet-stream"));
            Assert.That(put.HttpMethod, Is.EqualTo("PUT"));
            Assert.That(put.Body, Is.EqualTo(data));
            Assert.That(written.Size, Is.EqualTo(1000));
            Assert.That(_storage.Content("emb", "big/file.bin"), Is.EqualTo(data));
        });
    }

    [Test]
    public async Task DeleteIsTrueOnceThenFalse()
    {
        _storage.Put("images", "a/b.jpg", [1]);
        Assert.That(await _store.DeleteAsync("images", "a/b.jpg"), Is.True);
        Assert.That(await _store.DeleteAsync("images", "a/b.jpg"), Is.False);
        Assert.That(Server.RequestsOf("storage.objects.delete").Select(r => r.RawPath), Is.All.EqualTo("/storage/v1/b/images/o/a%2Fb.jpg"));
    }
}
