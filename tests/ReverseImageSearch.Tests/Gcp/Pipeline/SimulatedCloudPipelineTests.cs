using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Emulator;
using ReverseImageSearch.Gcp;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp.Pipeline;

/// <summary>
/// The nine function projects on their real hosting (FunctionHost: callable, CloudEvent and task protocols) with
/// the Google adapters pointed at a simulated Google Cloud: Google's Firestore emulator, and Cloud Storage, Cloud
/// Tasks, Vertex AI Vector Search and Eventarc played by in-test servers. Every request the adapters send to
/// Storage, Cloud Tasks and Vertex AI is checked against the discovery documents.
/// </summary>
[NonParallelizable]
public sealed class SimulatedCloudPipelineTests
{
    private const string Project = "demo-pipeline";
    private const string Instance = "ris";
    private const string Location = "us-central1";
    private const string ImagesBucket = "demo-pipeline-images";
    private const string ServiceAccount = "ext-ris@demo-pipeline.iam.gserviceaccount.com";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    private string _root = null!;
    private ContractServer _server = null!;
    private HttpClient _http = null!;
    private string _emulatorHost = null!;
    private FunctionHosts _functions = null!;

    [SetUp]
    public async Task SetUpAsync()
    {
        _emulatorHost = await FirestoreEmulator.EnsureStartedAsync();
        await FirestoreEmulator.WipeAsync(Project);
        _root = Directory.CreateTempSubdirectory("ris-cloudsim-").FullName;
        _server = await ContractServer.StartAsync("storage.v1", "cloudtasks.v2", "aiplatform.v1", "firestore.v1");
        _server.Reset();
        _http = new HttpClient { Timeout = TimeSpan.FromSeconds(100) };
    }

    [TearDown]
    public async Task TearDownAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    /// <param name="matchCrops">MATCH_CROPS: views are written beside the images, with their crowding attributes, and
    /// every query asks Vertex AI for one neighbour per image (the simulated Vector Search reports a problem otherwise).</param>
    [TestCase(false)]
    [TestCase(true)]
    public async Task BackfillIndexDeployQueryUploadOverwriteAndDeleteThroughTheNineHostedFunctions(bool matchCrops)
    {
        var clock = Stopwatch.StartNew();
        var samples = Directory.GetFiles(SampleImages.EnsureCreated(Path.Combine(_root, "samples")), "*.jpg").Order(StringComparer.Ordinal).ToArray();
        // 40 pictures (5 shapes x 8 colours); every fifth gives 8 that differ in shape and colour.
        var seeded = Enumerable.Range(0, 8).Select(i => samples[i * 5]).ToArray();
        var late = samples[2];
        var added = samples[13];
        var replacement = samples[26];

        var storage = new SimulatedStorage(_server, ImagesBucket);
        foreach (var file in seeded)
        {
            storage.Seed(ImagesBucket, Path.GetFileName(file), await File.ReadAllBytesAsync(file), "image/jpeg");
        }

        await using var tasks = new SimulatedCloudTasks(_server, Project, Location, Instance, ["backfillTrigger", "backfillTask", "datapointWriteTask"]);
        await using var vertex = new SimulatedVectorSearch(_server, Project, Location, Path.Combine(_root, "vertex"), storage, TimeSpan.FromMilliseconds(500));
        var simulated = _server.BaseUri.ToString().TrimEnd('/');
        var configuration = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["PROJECT_ID"] = Project,
            ["EXT_INSTANCE_ID"] = Instance,
            ["LOCATION"] = Location,
            ["IMG_BUCKET"] = ImagesBucket,
            ["BATCH_SIZE"] = "3",
            ["PENDING_WRITE_RETRY_SECONDS"] = "1",
            ["SERVICE_ACCOUNT_EMAIL"] = ServiceAccount,
            ["FIRESTORE_EMULATOR_HOST"] = _emulatorHost,
            ["STORAGE_EMULATOR_HOST"] = simulated,
            ["RIS_TEST_CLOUD_TASKS_BASE"] = simulated + "/v2",
            ["RIS_TEST_VERTEX_BASE"] = simulated + "/v1",
            ["RIS_TEST_VECTOR_SEARCH_QUERY_BASE"] = simulated,
            ["RIS_TEST_ACCESS_TOKEN"] = _server.ExpectedToken,
            ["Logging:LogLevel:Default"] = "Warning",
            ["MATCH_CROPS"] = matchCrops ? "true" : "false",
        };
        var queryOnly = new Dictionary<string, IReadOnlyDictionary<string, string>>
        {
            // The Auth emulator's variable: queryIndex accepts its unsigned ID tokens.
            ["queryIndex"] = new Dictionary<string, string> { ["FIREBASE_AUTH_EMULATOR_HOST"] = "127.0.0.1:9099" },
        };

        await using var hosts = await FunctionHosts.StartAsync(configuration, queryOnly);
        _functions = hosts;
        var eventarc = new Eventarc(hosts, _http);
        tasks.Hosts = hosts;
        tasks.Http = _http;
        storage.Triggers = eventarc;
        vertex.AuditLogs = eventarc;
        await using var firestore = new FirestoreTriggers(_http, _emulatorHost, Project, $"_ext-{Instance}/tasks", "createIndexTrigger", eventarc, TimeSpan.FromMilliseconds(150));

        // A client of the simulated cloud (the user's app or gsutil), on the same production adapter and contract.
        await using var client = new ServiceCollection()
            .AddGcpAdapters(
                new ExtensionOptions { ProjectId = Project, InstanceId = Instance, Location = Location, ImageBucket = ImagesBucket },
                new ConfigurationBuilder().AddInMemoryCollection(configuration.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value))).Build())
            .BuildServiceProvider();
        var objects = client.GetRequiredService<IObjectStore>();

        // Transient faults on the way, as Google's APIs give them: a reset connection, 429 with Retry-After, 503.
        // The pipeline retries each (backoff with jitter); the flow must end exactly as it does without them.
        string[] faulted =
        [
            "storage.objects.list", "cloudtasks.projects.locations.queues.tasks.create",
            "aiplatform.projects.locations.indexes.upsertDatapoints", "aiplatform.projects.locations.indexEndpoints.findNeighbors",
        ];
        _server.FailNext(faulted[0], Reply.Reset());
        _server.FailNext(faulted[2], Reply.Error(503, "UNAVAILABLE", "The service is currently unavailable."));
        _server.FailNext(faulted[3], Reply.Error(503, "UNAVAILABLE", "The service is currently unavailable."));

        try
        {
            // Install, as deploy.sh does: one task for backfillTrigger with {"data": {}}.
            await InstallAsync();
            // After the install's own task (which plays gcloud): the functions' first enqueue meets the 429.
            _server.FailNext(faulted[1], new Reply(429, """{"error":{"code":429,"message":"Rate exceeded","status":"RESOURCE_EXHAUSTED"}}""",
                new Dictionary<string, string> { ["Retry-After"] = "1" }));
            await EventuallyAsync(async () => await DocumentAsync("tasks") is not null, "the backfill to start (tasks document)");

            // An upload while the index is not deployed yet waits in datapointWriteTask.
            await objects.WriteAsync(ImagesBucket, Path.GetFileName(late), await File.ReadAllBytesAsync(late), "image/jpeg");

            var metadata = await EventuallyAsync(async () =>
            {
                var m = await DocumentAsync("metadata");
                if (m is { } fields && fields.TryGetProperty("error", out var error))
                {
                    Assert.Fail("The extension recorded an error: " + error.GetRawText());
                }

                return m is { } f && Text(f, "status") == "INDEX_DEPLOYED" ? m : null;
            }, "metadata status INDEX_DEPLOYED");
            var deployedAfter = clock.Elapsed;

            var backfill = (await DocumentAsync("tasks"))!.Value;
            Assert.Multiple(() =>
            {
                Assert.That(Text(backfill, "status"), Is.EqualTo("DONE"));
                Assert.That(Integer(backfill, "totalLength"), Is.EqualTo(seeded.Length));
                Assert.That(Integer(backfill, "processedLength"), Is.EqualTo(seeded.Length));
                Assert.That(Text(metadata, "index"), Does.StartWith($"projects/{Project}/locations/{Location}/indexes/"));
                Assert.That(Text(metadata, "indexEndpoint"), Does.StartWith($"projects/{Project}/locations/{Location}/indexEndpoints/"));
                Assert.That(Text(metadata, "publicEndpointDomainName"), Is.EqualTo(SimulatedVectorSearch.PublicDomain));
                Assert.That(metadata.TryGetProperty("operation", out _), Is.False, "the finished operation is dropped");
                Assert.That(storage.Names($"{Project}-ext-{Instance}"), Has.Some.StartsWith("datapoints/"), "the backfill wrote datapoint files");
            });

            // Running install again (deploy.sh re-run) keeps the completed backfill, its datapoint files and the index.
            var embeddings = $"{Project}-ext-{Instance}";
            var files = storage.Names(embeddings).Where(n => n.StartsWith("datapoints/", StringComparison.Ordinal)).ToDictionary(n => n, n => storage.Content(embeddings, n));
            int Installs() => tasks.Deliveries.Count(d => d.Function == "backfillTrigger" && d.Status / 100 == 2);
            var installs = Installs();
            await InstallAsync();
            await EventuallyAsync(() => Task.FromResult(Installs() > installs && tasks.Pending == 0), "the second install task");
            var again = (await DocumentAsync("tasks"))!.Value;
            Assert.Multiple(() =>
            {
                Assert.That(Text(again, "runId"), Is.EqualTo(Text(backfill, "runId")), "the completed backfill is not started again");
                Assert.That(Text(again, "status"), Is.EqualTo("DONE"));
                Assert.That(Integer(again, "processedLength"), Is.EqualTo(seeded.Length));
                Assert.That(storage.Names(embeddings).Where(n => n.StartsWith("datapoints/", StringComparison.Ordinal)).ToDictionary(n => n, n => storage.Content(embeddings, n)),
                    Is.EquivalentTo(files), "the datapoint files the index was built from are kept");
                Assert.That(_server.RequestsOf("aiplatform.projects.locations.indexes.create"), Has.Count.EqualTo(1), "no second index");
            });

            // Every backfilled image finds its stored copy first.
            foreach (var file in seeded)
            {
                var neighbors = await QueryAsync(await File.ReadAllBytesAsync(file));
                Assert.That(neighbors, Has.Count.EqualTo(3));
                Assert.That(neighbors[0].Id, Is.EqualTo(Path.GetFileName(file)), $"nearest to {Path.GetFileName(file)}");
                Assert.That(neighbors[0].Distance, Is.GreaterThan(0.99), "dot product of identical unit vectors");
            }

            // More like a stored image: Vertex AI's readIndexDatapoints gives its vector, findNeighbors the rest, itself left out.
            var stored = Path.GetFileName(seeded[0]);
            var byImage = await QueryAsync(new { query = new[] { Convert.ToBase64String(await File.ReadAllBytesAsync(seeded[0])) }, neighbours = 4 });
            var byPath = await QueryAsync(new { paths = new[] { stored }, neighbours = 3 });
            Assert.That(byPath.Select(n => n.Id), Is.EqualTo(byImage.Skip(1).Select(n => n.Id)), "the image's own neighbours, less itself");

            // The upload that waited is indexed once the index is deployed.
            await EventuallyAsync(async () => (await QueryAsync(await File.ReadAllBytesAsync(late)))[0].Id == Path.GetFileName(late), "the image uploaded while deploying to be found");

            await UploadOverwriteAndDeleteAsync(objects, storage, tasks, "uploads-" + Path.GetFileName(added), added, seeded[1], replacement, seeded[2]);

            // What reached the functions: every one of the nine ran, every delivery was acknowledged.
            var deliveries = eventarc.Deliveries.Concat(tasks.Deliveries).ToArray();
            var reached = deliveries.Where(d => d.Status / 100 == 2).Select(d => d.Function).Append("queryIndex").ToHashSet();
            var problems = storage.Problems.Concat(tasks.Problems).Concat(vertex.Problems).Concat(firestore.Problems).ToArray();
            var counts = _server.Requests.GroupBy(r => r.MethodId).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}: {g.Count()}").ToArray();
            TestContext.Progress.WriteLine($"simulated cloud: deployed after {deployedAfter.TotalSeconds:F1} s, whole flow {clock.Elapsed.TotalSeconds:F1} s");
            TestContext.Progress.WriteLine("validated requests: " + string.Join("; ", counts));
            TestContext.Progress.WriteLine("deliveries: " + string.Join("; ", deliveries.GroupBy(d => $"{d.Kind} {d.Function} {d.Status}").Select(g => $"{g.Key} x{g.Count()}")));
            Assert.Multiple(() =>
            {
                Assert.That(problems, Is.Empty, "problems the simulated services saw");
                Assert.That(vertex.ViewsWritten, matchCrops ? Is.GreaterThanOrEqualTo(seeded.Length) : Is.Zero, "views written (one zoom per image at least)");
                Assert.That(faulted.Where(m => _server.RequestsOf(m).Count < 2), Is.Empty, "faulted calls that were not sent again");
                Assert.That(eventarc.Deliveries.Where(d => d.Status / 100 != 2), Is.Empty, "event deliveries answered with an error");
                Assert.That(reached, Is.EquivalentTo(FunctionHosts.Functions.Keys), "functions that handled a delivery");
                Assert.That(firestore.Announced.Any(mask => mask.Contains("status")), Is.True, "an update event carried the status change");
                Assert.That(_server.Requests.Select(r => r.MethodId).Distinct(), Is.SupersetOf(new[]
                {
                    "storage.objects.list", "storage.objects.get", "storage.objects.insert", "storage.objects.delete",
                    "cloudtasks.projects.locations.queues.tasks.create",
                    "aiplatform.projects.locations.indexes.create", "aiplatform.projects.locations.indexes.operations.get",
                    "aiplatform.projects.locations.indexEndpoints.create", "aiplatform.projects.locations.indexEndpoints.deployIndex",
                    "aiplatform.projects.locations.indexEndpoints.get", "aiplatform.projects.locations.indexes.upsertDatapoints",
                    "aiplatform.projects.locations.indexes.removeDatapoints", "aiplatform.projects.locations.indexEndpoints.findNeighbors",
                }));
            });

            // Uninstall: deploy.sh undeploys and deletes the endpoint and the index with gcloud.
            var endpoint = Text(metadata, "indexEndpoint")!;
            await vertex.UninstallAsync();

            // Reinstall while the metadata document still says INDEX_DEPLOYED for the deleted index (an uninstall that
            // kept _ext-{instance}): the install finds the index gone (404) and starts over, so a new index is built.
            await InstallAsync();
            var rebuilt = await EventuallyAsync<JsonElement>(async () =>
            {
                var m = await DocumentAsync("metadata");
                return m is { } f && Text(f, "status") == "INDEX_DEPLOYED" && Text(f, "index") != Text(metadata, "index") ? m : null;
            }, "a new index deployed after the reinstall");
            Assert.That(Text(rebuilt, "indexEndpoint"), Is.Not.EqualTo(endpoint), "a new endpoint too");
            Assert.That((await QueryAsync(await File.ReadAllBytesAsync(seeded[0])))[0].Id, Is.EqualTo(Path.GetFileName(seeded[0])), "the new index answers");
            _server.AssertNoViolations();
        }
        finally
        {
            await firestore.DisposeAsync();
            await tasks.DisposeAsync();
            await storage.DrainEventsAsync();
        }
    }

    /// <summary>
    /// INDEX_BACKEND=firestore: Firestore is both the coordination store and the vector store. Nothing waits for an
    /// index: the backfilled images and an upload made during the backfill are found while the vector index is still
    /// being created (the test holds the Admin API operation until it has searched), and INDEX_DEPLOYED follows.
    /// </summary>
    [Test]
    public async Task WithFirestoreBackfillQueryUploadOverwriteAndDeleteNeverWaitForAnIndex()
    {
        var samples = Directory.GetFiles(SampleImages.EnsureCreated(Path.Combine(_root, "samples")), "*.jpg").Order(StringComparer.Ordinal).ToArray();
        var seeded = Enumerable.Range(0, 8).Select(i => samples[i * 5]).ToArray();
        var late = samples[2];
        var added = samples[13];
        var replacement = samples[26];

        var storage = new SimulatedStorage(_server, ImagesBucket);
        foreach (var file in seeded)
        {
            storage.Seed(ImagesBucket, Path.GetFileName(file), await File.ReadAllBytesAsync(file), "image/jpeg");
        }

        // The Firestore Admin API (the emulator has none): the index stays CREATING until the test lets it finish.
        var indexName = $"projects/{Project}/databases/(default)/collectionGroups/vectors-{Instance}/indexes/CICAgJiUpoMK";
        var operationName = $"projects/{Project}/databases/(default)/operations/S1ZQbkxRTzZ1";
        var indexReady = 0;
        _server.Handle("firestore.projects.databases.collectionGroups.indexes.create", _ => Reply.Ok(new { name = operationName, metadata = new { index = indexName } }));
        _server.Handle("firestore.projects.databases.operations.get", _ => Volatile.Read(ref indexReady) == 1
            ? Reply.Ok(new { name = operationName, done = true, response = new { name = indexName, state = "READY" } })
            : Reply.Ok(new { name = operationName, metadata = new { index = indexName } }));

        await using var tasks = new SimulatedCloudTasks(_server, Project, Location, Instance, ["backfillTrigger", "backfillTask", "datapointWriteTask"]);
        var simulated = _server.BaseUri.ToString().TrimEnd('/');
        var configuration = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["PROJECT_ID"] = Project,
            ["EXT_INSTANCE_ID"] = Instance,
            ["LOCATION"] = Location,
            ["IMG_BUCKET"] = ImagesBucket,
            ["INDEX_BACKEND"] = "firestore",
            ["BATCH_SIZE"] = "3",
            ["PENDING_WRITE_RETRY_SECONDS"] = "1",
            ["SERVICE_ACCOUNT_EMAIL"] = ServiceAccount,
            ["FIRESTORE_EMULATOR_HOST"] = _emulatorHost,
            ["STORAGE_EMULATOR_HOST"] = simulated,
            ["RIS_TEST_CLOUD_TASKS_BASE"] = simulated + "/v2",
            ["RIS_TEST_FIRESTORE_ADMIN_BASE"] = simulated + "/v1",
            ["RIS_TEST_ACCESS_TOKEN"] = _server.ExpectedToken,
            ["Logging:LogLevel:Default"] = "Warning",
        };
        var queryOnly = new Dictionary<string, IReadOnlyDictionary<string, string>>
        {
            ["queryIndex"] = new Dictionary<string, string> { ["FIREBASE_AUTH_EMULATOR_HOST"] = "127.0.0.1:9099" },
        };

        await using var hosts = await FunctionHosts.StartAsync(configuration, queryOnly);
        _functions = hosts;
        var eventarc = new Eventarc(hosts, _http);
        tasks.Hosts = hosts;
        tasks.Http = _http;
        storage.Triggers = eventarc;
        await using var firestore = new FirestoreTriggers(_http, _emulatorHost, Project, $"_ext-{Instance}/tasks", "createIndexTrigger", eventarc, TimeSpan.FromMilliseconds(150));
        await using var client = new ServiceCollection()
            .AddGcpAdapters(
                new ExtensionOptions { ProjectId = Project, InstanceId = Instance, Location = Location, ImageBucket = ImagesBucket },
                new ConfigurationBuilder().AddInMemoryCollection(configuration.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value))).Build())
            .BuildServiceProvider();
        var objects = client.GetRequiredService<IObjectStore>();

        try
        {
            await InstallAsync();
            await EventuallyAsync(async () => await DocumentAsync("tasks") is not null, "the backfill to start (tasks document)");
            await objects.WriteAsync(ImagesBucket, Path.GetFileName(late), await File.ReadAllBytesAsync(late), "image/jpeg");

            // Every backfilled image and the upload are found while the index is still being created.
            await EventuallyAsync(async () => await DocumentAsync("tasks") is { } t && Text(t, "status") == "DONE", "the backfill to finish");
            await EventuallyAsync(async () => await DocumentAsync("metadata") is { } m && Text(m, "status") == "INDEX_BUILDING", "createIndexTrigger to start the vector index");
            foreach (var file in seeded.Append(late))
            {
                await EventuallyAsync(async () => (await QueryAsync(await File.ReadAllBytesAsync(file)))[0].Id == Path.GetFileName(file), $"{Path.GetFileName(file)} to be found");
            }

            var first = await QueryAsync(await File.ReadAllBytesAsync(seeded[0]));
            Assert.That(Text((await DocumentAsync("metadata"))!.Value, "status"), Is.EqualTo("INDEX_BUILDING"), "all of that before the index was ready");
            Assert.That(first, Has.Count.EqualTo(3));
            Assert.That(first[0].Distance, Is.GreaterThan(0.99), "dot product of identical unit vectors");
            Assert.That(first[1].Distance, Is.LessThan(first[0].Distance), "larger is nearer, as Vector Search reports DOT_PRODUCT_DISTANCE");

            Interlocked.Exchange(ref indexReady, 1);
            var metadata = await EventuallyAsync(async () =>
            {
                var m = await DocumentAsync("metadata");
                if (m is { } fields && fields.TryGetProperty("error", out var error))
                {
                    Assert.Fail("The extension recorded an error: " + error.GetRawText());
                }

                return m is { } f && Text(f, "status") == "INDEX_DEPLOYED" ? m : null;
            }, "metadata status INDEX_DEPLOYED");
            Assert.Multiple(() =>
            {
                Assert.That(Text(metadata, "index"), Is.EqualTo(indexName));
                Assert.That(metadata.TryGetProperty("operation", out _), Is.False, "the finished operation is dropped");
                Assert.That(metadata.TryGetProperty("indexEndpoint", out _), Is.False, "Firestore has no endpoint");
                Assert.That(storage.Names($"{Project}-ext-{Instance}").Where(n => n.StartsWith("datapoints/", StringComparison.Ordinal)), Is.Empty,
                    "no datapoint files: the vectors went straight to their documents");
            });
            var vectorDocument = await DocumentAsync($"metadata/vectors-{Instance}/{Uri.EscapeDataString(Path.GetFileName(seeded[3]))}");
            Assert.That(vectorDocument is { } v ? Text(v, "path") : null, Is.EqualTo(Path.GetFileName(seeded[3])), "one vector document per image, named by it");

            var deleted = await UploadOverwriteAndDeleteAsync(objects, storage, tasks, "uploads/" + Path.GetFileName(added), added, seeded[1], replacement, seeded[2]);
            Assert.That(await DocumentAsync($"metadata/vectors-{Instance}/{Uri.EscapeDataString(deleted)}"), Is.Null, "its vector document is gone");

            var deliveries = eventarc.Deliveries.Concat(tasks.Deliveries).ToArray();
            var reached = deliveries.Where(d => d.Status / 100 == 2).Select(d => d.Function).Append("queryIndex").ToHashSet();
            var problems = storage.Problems.Concat(tasks.Problems).Concat(firestore.Problems).ToArray();
            TestContext.Progress.WriteLine("firestore flow deliveries: " + string.Join("; ", deliveries.GroupBy(d => $"{d.Kind} {d.Function} {d.Status}").Select(g => $"{g.Key} x{g.Count()}")));
            Assert.Multiple(() =>
            {
                Assert.That(problems, Is.Empty, "problems the simulated services saw");
                Assert.That(eventarc.Deliveries.Where(d => d.Status / 100 != 2), Is.Empty, "event deliveries answered with an error");
                // datapointWriteTask may run a write streamRemoveDatapoint handed over (the overwrite's delete event found the
                // new object, and only the functions that embed carry the embedder): timing decides, so it is not counted.
                Assert.That(reached.Except(["datapointWriteTask"]), Is.EquivalentTo(FunctionHosts.Functions.Keys.Except(["onIndexCreated", "onIndexDeployed", "datapointWriteTask"])),
                    "every function but the two Vertex AI audit-log ones (not deployed for Firestore) and the one that runs writes that waited");
                Assert.That(tasks.Deliveries.Where(d => d.Function == "datapointWriteTask" && !d.Detail.StartsWith("handover-", StringComparison.Ordinal)), Is.Empty,
                    "no write ever waited for the index");
                Assert.That(_server.Requests.Select(r => r.MethodId).Where(m => m.StartsWith("aiplatform.", StringComparison.Ordinal)), Is.Empty, "no Vertex AI call");
            });
            _server.AssertNoViolations();
        }
        finally
        {
            await firestore.DisposeAsync();
            await tasks.DisposeAsync();
            await storage.DrainEventsAsync();
        }
    }

    /// <summary>
    /// The live changes both backends must follow: a new upload is found; an overwrite makes the name find the new
    /// picture and no longer the old one, also after both of its events; a deleted image leaves the results. Returns
    /// the deleted object's name once every event and task has been delivered.
    /// </summary>
    private async Task<string> UploadOverwriteAndDeleteAsync(
        IObjectStore objects, SimulatedStorage storage, SimulatedCloudTasks tasks,
        string addedName, string added, string overwrittenFile, string replacement, string deletedFile)
    {
        await objects.WriteAsync(ImagesBucket, addedName, await File.ReadAllBytesAsync(added), "image/jpeg");
        await EventuallyAsync(async () => (await QueryAsync(await File.ReadAllBytesAsync(added)))[0].Id == addedName, "the new upload to be found");

        var overwritten = Path.GetFileName(overwrittenFile);
        var oldContent = await File.ReadAllBytesAsync(overwrittenFile);
        await objects.WriteAsync(ImagesBucket, overwritten, await File.ReadAllBytesAsync(replacement), "image/jpeg");
        await EventuallyAsync(async () =>
        {
            var byNew = await QueryAsync(await File.ReadAllBytesAsync(replacement));
            var byOld = await QueryAsync(oldContent);
            return byNew[0].Id == overwritten && byNew[0].Distance > 0.99
                && !byOld.Any(n => n.Id == overwritten && n.Distance > 0.99);
        }, "the overwritten image to be re-indexed");
        await storage.DrainEventsAsync();
        Assert.That((await QueryAsync(await File.ReadAllBytesAsync(replacement)))[0].Id, Is.EqualTo(overwritten),
            "still indexed after both events of the overwrite (deleted old generation, finalized new one)");

        var deleted = Path.GetFileName(deletedFile);
        Assert.That(await objects.DeleteAsync(ImagesBucket, deleted), Is.True);
        await EventuallyAsync(async () => (await QueryAsync(await File.ReadAllBytesAsync(deletedFile))).All(n => n.Id != deleted), "the deleted image to disappear");
        await storage.DrainEventsAsync();
        await EventuallyAsync(() => Task.FromResult(tasks.Pending == 0), "every task to be delivered");
        return deleted;
    }

    private async Task InstallAsync()
    {
        var queue = $"projects/{Project}/locations/{Location}/queues/ext-{Instance}-backfillTrigger";
        var task = new
        {
            task = new
            {
                httpRequest = new
                {
                    url = $"https://{Location}-{Project}.cloudfunctions.net/ext-{Instance}-backfillTrigger",
                    httpMethod = "POST",
                    headers = new Dictionary<string, string> { ["Content-Type"] = "application/json" },
                    body = ContractServer.Base64("""{"data":{}}"""),
                    oidcToken = new { serviceAccountEmail = ServiceAccount },
                },
            },
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, _server.Url($"/v2/{queue}/tasks"))
        {
            Content = new StringContent(JsonSerializer.Serialize(task), Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _server.ExpectedToken);
        using var response = await _http.SendAsync(request);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), await response.Content.ReadAsStringAsync());
    }

    /// <summary>Calls queryIndex as the Firebase JS SDK does, signed in on the Auth emulator.</summary>
    private Task<List<(string Id, double Distance)>> QueryAsync(byte[] image) =>
        QueryAsync(new { query = new[] { Convert.ToBase64String(image) }, neighbours = 3 });

    private async Task<List<(string Id, double Distance)>> QueryAsync(object data)
    {
        var body = JsonSerializer.Serialize(new { data });
        using var request = new HttpRequestMessage(HttpMethod.Post, _functions.Url("queryIndex"))
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", EmulatorIdToken());
        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), text);
        using var json = JsonDocument.Parse(text);
        var result = json.RootElement.GetProperty("result");
        Assert.That(result.GetProperty("status").GetString(), Is.EqualTo("ok"));
        var entries = result.GetProperty("data").GetProperty("nearestNeighbors");
        Assert.That(entries.GetArrayLength(), Is.EqualTo(1), "one entry per query image or path");
        return entries[0].GetProperty("neighbors").EnumerateArray()
            .Select(n => (n.GetProperty("datapoint").GetProperty("datapointId").GetString()!, n.TryGetProperty("distance", out var d) ? d.GetDouble() : 0))
            .ToList();
    }

    /// <summary>An Auth emulator ID token: unsigned (alg none, empty signature) with the claims the Admin SDK checks.</summary>
    private static string EmulatorIdToken()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        static string Part(object value) => Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(value)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var header = Part(new { alg = "none", typ = "JWT" });
        var payload = Part(new Dictionary<string, object>
        {
            ["iss"] = $"https://securetoken.google.com/{Project}",
            ["aud"] = Project,
            ["sub"] = "pipeline-user",
            ["user_id"] = "pipeline-user",
            ["iat"] = now,
            ["exp"] = now + 3600,
            ["auth_time"] = now,
            ["firebase"] = new Dictionary<string, object> { ["identities"] = new { }, ["sign_in_provider"] = "anonymous" },
        });
        return $"{header}.{payload}.";
    }

    /// <summary>A coordination document's fields, read straight from the emulator; null when it does not exist.</summary>
    private async Task<JsonElement?> DocumentAsync(string name)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get,
            new Uri($"http://{_emulatorHost}/v1/projects/{Project}/databases/(default)/documents/_ext-{Instance}/{name}"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "owner");
        using var response = await _http.SendAsync(request);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccessStatusCode();
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.TryGetProperty("fields", out var fields) ? fields.Clone() : JsonDocument.Parse("{}").RootElement.Clone();
    }

    private static string? Text(JsonElement fields, string name) =>
        fields.TryGetProperty(name, out var v) && v.TryGetProperty("stringValue", out var s) ? s.GetString() : null;

    private static long? Integer(JsonElement fields, string name) =>
        fields.TryGetProperty(name, out var v) && v.TryGetProperty("integerValue", out var i) ? long.Parse(i.GetString()!, System.Globalization.CultureInfo.InvariantCulture) : null;

    private static async Task<T> EventuallyAsync<T>(Func<Task<T?>> probe, string what)
        where T : struct
    {
        T? found = null;
        await EventuallyAsync(async () => (found = await probe()) is not null, what);
        return found!.Value;
    }

    private static async Task EventuallyAsync(Func<Task<bool>> probe, string what)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!await probe())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Gave up waiting for {what} after {Bound.TotalSeconds} s.");
            }

            await Task.Delay(250);
        }
    }
}
