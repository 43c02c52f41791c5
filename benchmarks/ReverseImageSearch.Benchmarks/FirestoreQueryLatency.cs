using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Gcp;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// INDEX_BACKEND=firestore against Google's Firestore emulator (--emulator host:port): writes --count synthetic
/// 1280-number vectors through the production adapter (batched commits), then times --queries findNearest queries
/// of --neighbors each, one at a time. An emulator figure: the emulator scans in one Java process on this machine,
/// production Firestore does not; it shows the adapter's cost and the scan's growth, not a production latency.
/// </summary>
internal static class FirestoreQueryLatency
{
    public static async Task<int> RunAsync(Cli cli)
    {
        var count = cli.Int("count", 10_000);
        var dimensions = cli.Int("dims", 1280);
        var neighbors = cli.Int("neighbors", 10);
        var options = new ExtensionOptions
        {
            ProjectId = "demo-bench",
            InstanceId = "bench",
            Location = "us-central1",
            ImageBucket = "images",
            IndexBackend = IndexBackend.Firestore,
        };
        await using var services = new ServiceCollection()
            .AddGcpAdapters(options, e => e.FirestoreEmulatorHost = cli.Require("emulator"), configureAdapters: null)
            .BuildServiceProvider();
        var index = services.GetRequiredService<IVectorIndexService>();
        var collection = new CoordinationDocuments(options).VectorCollection;

        var write = Stopwatch.StartNew();
        var batch = new List<IndexDatapoint>(1000);
        var queries = SyntheticVectors.Generate(count, dimensions, cli.Int("queries", 30), (i, row) =>
        {
            batch.Add(new IndexDatapoint($"images/{i:D7}.jpg", (float[])row.Clone()));
            if (batch.Count == 1000)
            {
                index.UpsertDatapointsAsync(collection, batch).GetAwaiter().GetResult();
                batch.Clear();
            }
        });
        await index.UpsertDatapointsAsync(collection, batch);
        write.Stop();

        await index.FindNeighborsAsync("", "", "", [new NeighborQuery("warm-up", queries[0])], neighbors);
        var timings = new List<double>(queries.Length);
        foreach (var query in queries)
        {
            var clock = Stopwatch.StartNew();
            var answer = await index.FindNeighborsAsync("", "", "", [new NeighborQuery("q", query)], neighbors);
            timings.Add(clock.Elapsed.TotalMilliseconds);
            if (answer[0].Neighbors.Count != Math.Min(neighbors, count))
            {
                throw new InvalidOperationException($"findNearest answered {answer[0].Neighbors.Count} neighbours, not {neighbors}.");
            }
        }

        timings.Sort();
        cli.Emit(new
        {
            benchmark = "firestore-query (Firestore emulator, not production)",
            vectors = count,
            dimensions,
            neighbors,
            queries = timings.Count,
            writeSeconds = Math.Round(write.Elapsed.TotalSeconds, 1),
            medianMs = Math.Round(timings[timings.Count / 2], 1),
            p90Ms = Math.Round(timings[(int)(timings.Count * 0.9)], 1),
            meanMs = Math.Round(timings.Average(), 1),
        });
        return 0;
    }
}
