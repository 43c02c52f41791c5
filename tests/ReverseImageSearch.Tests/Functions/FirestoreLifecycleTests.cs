using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.VectorIndex;
using Microsoft.Extensions.DependencyInjection;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>
/// INDEX_BACKEND=firestore on the local stack: the in-process index with Firestore's lifecycle. Nothing waits for
/// a build: images are searchable while the backfill runs, uploads never wait, and INDEX_DEPLOYED needs no endpoint.
/// </summary>
[Parallelizable(ParallelScope.None)]
public class FirestoreLifecycleTests
{
    private static readonly Dictionary<string, string?> Firestore = new() { ["INDEX_BACKEND"] = "firestore" };

    [Test]
    public async Task BackfillUploadOverwriteDeleteAndQueriesNeverWaitForAnIndex()
    {
        // A long build delay would hold a Vertex-style index for a minute; Firestore's lifecycle ignores it.
        await using var stack = await LocalStackHarness.Create(imageCount: 12, Firestore, buildDelay: TimeSpan.FromMinutes(1)).StartAsync();
        Assert.That(stack.Services.GetRequiredService<IVectorIndexService>(), Is.InstanceOf<LocalCollectionVectorIndex>());
        var names = LocalStackHarness.SampleNames;

        await LocalStackHarness.WaitUntilAsync(async () => await stack.NearestAsync(LocalStackHarness.SampleBytes(names[0])) == names[0],
            TimeSpan.FromSeconds(60), "the first backfilled image to be found");
        // The index takes writes and queries from the start (ReadIndexAvailabilityAsync says deployed at once); the backfill's
        // end records INDEX_DEPLOYED, after the first image is found.
        var deployed = await stack.WaitUntilDeployedAsync(TimeSpan.FromSeconds(60));
        await LocalStackHarness.WaitUntilAsync(async () => (await stack.MetadataDocumentAsync())?.GetString("status") == "INDEX_DEPLOYED",
            TimeSpan.FromSeconds(60), "the backfill to record INDEX_DEPLOYED");
        var metadata = await stack.MetadataDocumentAsync();
        Assert.Multiple(() =>
        {
            Assert.That(deployed.Index, Is.EqualTo(stack.State.Paths.VectorCollection));
            Assert.That(metadata!["indexEndpoint"], Is.Null, "no endpoint");
            Assert.That(metadata["error"], Is.Null);
        });

        var chunk = await stack.Documents.GetAsync(stack.State.Paths.Enqueue(stack.State.Paths.BackfillTaskId(1)));
        Assert.That(chunk!["filePath"], Is.Null, "no datapoint files: vectors go straight to the index");

        foreach (var name in names.Take(12))
        {
            var found = (await stack.QueryAsync(3, LocalStackHarness.SampleBytes(name)))[0];
            Assert.That(found[0].Id, Is.EqualTo(name));
            Assert.That(found[0].Distance, Is.EqualTo(1.0).Within(1e-4), "dot product of a unit vector with itself");
        }

        stack.AddImage("uploads/new.jpg", LocalStackHarness.SampleBytes(names[20]));
        await LocalStackHarness.WaitUntilAsync(async () => await stack.NearestAsync(LocalStackHarness.SampleBytes(names[20])) == "uploads/new.jpg",
            TimeSpan.FromSeconds(30), "the upload to be indexed");
        stack.AddImage(names[1], LocalStackHarness.SampleBytes(names[30]));
        await LocalStackHarness.WaitUntilAsync(async () => await stack.NearestAsync(LocalStackHarness.SampleBytes(names[30])) == names[1],
            TimeSpan.FromSeconds(30), "the overwrite to be indexed");
        File.Delete(Path.Combine(stack.ImagesFolder, names[2]));
        await LocalStackHarness.WaitUntilAsync(async () => (await stack.QueryAsync(20, LocalStackHarness.SampleBytes(names[2])))[0].All(n => n.Id != names[2]),
            TimeSpan.FromSeconds(30), "the deleted image to disappear");
    }

    [Test]
    public async Task WithoutBackfillTheFirstUploadIsSearchableAndRecordsTheIndex()
    {
        var settings = new Dictionary<string, string?>(Firestore) { ["DO_BACKFILL"] = "false" };
        await using var stack = await LocalStackHarness.Create(imageCount: 0, settings).StartAsync();
        var first = LocalStackHarness.SampleNames[5];
        Assert.That((await stack.QueryAsync(3, LocalStackHarness.SampleBytes(first)))[0], Is.Empty, "an empty index answers, empty");

        stack.AddImage(first, LocalStackHarness.SampleBytes(first));
        await LocalStackHarness.WaitUntilAsync(async () => await stack.NearestAsync(LocalStackHarness.SampleBytes(first)) == first,
            TimeSpan.FromSeconds(60), "the first upload to be found");
        await stack.WaitUntilDeployedAsync(TimeSpan.FromSeconds(60));
    }
}
