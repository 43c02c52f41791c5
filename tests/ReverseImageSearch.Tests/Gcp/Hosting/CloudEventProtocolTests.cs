using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Gcp.Hosting;
using Proto = ReverseImageSearch.Gcp.Protos.Firestore;

namespace ReverseImageSearch.Tests.Gcp.Hosting;

public class CloudEventProtocolTests
{
    private static string CloudEvents => Path.Combine(TestPaths.ApiSpecs, "cloudevents");

    [Test]
    public async Task StorageFinalizedInBinaryModeWithInt64AsStrings()
    {
        var function = new StubStorage(StorageEventKind.Finalized);
        await using var server = await StartAsync(function);
        var data = await File.ReadAllBytesAsync(Path.Combine(CloudEvents, "testdata", "StorageObjectData-simple.json"));

        using var response = await server.Client.SendAsync(Binary(StorageEventDecoder.FinalizedType, data, "application/json",
            ("ce-bucket", "some-bucket"), ("ce-subject", "objects/folder/Test.cs")));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That(function.Events.Single(), Is.EqualTo(new StorageObjectEvent(
            StorageEventKind.Finalized, "some-bucket", "folder/Test.cs", "text/plain", 352, "kF8MuJ5+CTJxvyhHS1xzRg==", 1587627537231057, 1)));
    }

    [Test]
    public async Task StorageFinalizedInStructuredModeWithInt64AsNumbers()
    {
        var function = new StubStorage(StorageEventKind.Finalized);
        await using var server = await StartAsync(function);
        var envelope = await File.ReadAllTextAsync(Path.Combine(CloudEvents, "examples-structured", "StorageObjectDataWorkflows.json"));

        using var response = await server.Client.SendAsync(Structured(envelope));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That(function.Events.Single(), Is.EqualTo(new StorageObjectEvent(
            StorageEventKind.Finalized, "sample-bucket", "MyFile", "text/plain", 0, "xrX0h3SqCoeoKidv+GvlBw==", 96883251, 1)));
    }

    [Test]
    public async Task StorageDeletedInStructuredModeWithBase64Data()
    {
        var function = new StubStorage(StorageEventKind.Deleted);
        await using var server = await StartAsync(function);
        var data = await File.ReadAllBytesAsync(Path.Combine(CloudEvents, "testdata", "StorageObjectData-simple.json"));
        var envelope = new JsonObject
        {
            ["specversion"] = "1.0",
            ["type"] = StorageEventDecoder.DeletedType,
            ["source"] = "//storage.googleapis.com/projects/_/buckets/some-bucket",
            ["id"] = "42",
            ["datacontenttype"] = "application/json",
            ["data_base64"] = Convert.ToBase64String(data),
        };

        using var response = await server.Client.SendAsync(Structured(envelope.ToJsonString()));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That(function.Events.Single() is { Kind: StorageEventKind.Deleted, Name: "folder/Test.cs", Generation: 1587627537231057 }, Is.True);
    }

    [Test]
    public async Task StorageFunctionAcknowledgesAndIgnoresTheOtherKind()
    {
        var function = new StubStorage(StorageEventKind.Finalized);
        await using var server = await StartAsync(function);
        var data = await File.ReadAllBytesAsync(Path.Combine(CloudEvents, "testdata", "StorageObjectData-simple.json"));

        using var response = await server.Client.SendAsync(Binary(StorageEventDecoder.DeletedType, data, "application/json"));

        Assert.That(response.IsSuccessStatusCode, Is.True);
        Assert.That(function.Events, Is.Empty);
        Assert.That(server.Logs.Lines.Any(line => line.Message.Contains(StorageEventDecoder.DeletedType, StringComparison.Ordinal)
            && line.Message.Contains("without handling", StringComparison.Ordinal)), Is.True);
    }

    [Test]
    public async Task FirestoreUpdatedAsJsonCarriesOldAndNewValues()
    {
        var function = new StubDocument();
        await using var server = await StartAsync(function);
        var data = await File.ReadAllBytesAsync(Path.Combine(CloudEvents, "testdata", "DocumentEventData-simple.json"));

        using var response = await server.Client.SendAsync(Binary("google.cloud.firestore.document.v1.updated", data, "application/json; charset=utf-8",
            ("ce-document", "gcf-test/2Vm2mI1d0wIaK2Waj5to")));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        var change = function.Changes.Single();
        Assert.That(change.Path, Is.EqualTo("gcf-test/2Vm2mI1d0wIaK2Waj5to"));
        Assert.That(change.Before?.Path, Is.EqualTo("gcf-test/2Vm2mI1d0wIaK2Waj5to"));
        Assert.That(change.Before?["count"], Is.EqualTo(3L));
        Assert.That(change.After?["count"], Is.EqualTo(4L));
        Assert.That(change.After?["another test"], Is.EqualTo("asd"));
        Assert.That(change.After?.UpdateTime, Is.EqualTo(DateTimeOffset.Parse("2020-04-23T12:00:27.247187Z", System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Test]
    public async Task FirestoreJsonDecodesEveryValueType()
    {
        var function = new StubDocument();
        await using var server = await StartAsync(function);
        var data = await File.ReadAllBytesAsync(Path.Combine(CloudEvents, "testdata", "DocumentEventData-complex.json"));

        using var response = await server.Client.SendAsync(Binary("google.cloud.firestore.document.v1.written", data, "application/json"));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        var change = function.Changes.Single();
        Assert.That(change.Before, Is.Null, "an empty oldValue means the document did not exist");
        var after = change.After!;
        Assert.Multiple(() =>
        {
            Assert.That(after["arrayValue"], Is.EqualTo(new object?[] { 1L, 2L }));
            Assert.That(after["booleanValue"], Is.EqualTo(true));
            Assert.That(after["doubleValue"], Is.EqualTo(5.5));
            Assert.That(after["geoPointValue"], Is.EqualTo(new Dictionary<string, object?> { ["latitude"] = 51.4543, ["longitude"] = -0.9781 }));
            Assert.That(after["intValue"], Is.EqualTo(50L));
            var map = (IReadOnlyDictionary<string, object?>)after["mapValue"]!;
            Assert.That(map["field1"], Is.EqualTo("x"));
            Assert.That(map["field2"], Is.EqualTo(new object?[] { "x", 1L }));
            Assert.That(after.Fields.ContainsKey("nullValue") && after["nullValue"] is null, Is.True);
            Assert.That(after["referenceValue"], Is.EqualTo("projects/project-id/databases/(default)/documents/foo/bar/baz/qux"));
            Assert.That(after["stringValue"], Is.EqualTo("text"));
            Assert.That(after["timestampValue"], Is.EqualTo(new DateTimeOffset(2020, 4, 23, 14, 23, 53, 241, TimeSpan.Zero)));
        });
    }

    [Test]
    public async Task FirestoreUpdatedAsProtobufCarriesOldAndNewValuesWithNestedTypes()
    {
        var function = new StubDocument();
        await using var server = await StartAsync(function);
        const string name = "projects/demo/databases/(default)/documents/_ext-ris/tasks";
        var updated = new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero).AddTicks(1234567);
        var eventData = new Proto.DocumentEventData
        {
            OldValue = new Proto.Document { Name = name, Fields = { ["processed"] = new Proto.Value { IntegerValue = 2 } } },
            Value = new Proto.Document
            {
                Name = name,
                UpdateTime = Timestamp.FromDateTimeOffset(updated),
                Fields =
                {
                    ["processed"] = new Proto.Value { IntegerValue = 3 },
                    ["status"] = new Proto.Value { StringValue = "DONE" },
                    ["ratio"] = new Proto.Value { DoubleValue = 0.75 },
                    ["done"] = new Proto.Value { BooleanValue = true },
                    ["nothing"] = new Proto.Value { NullValue = NullValue.NullValue },
                    ["raw"] = new Proto.Value { BytesValue = ByteString.CopyFrom(1, 2, 255) },
                    ["at"] = new Proto.Value { TimestampValue = Timestamp.FromDateTimeOffset(updated) },
                    ["ref"] = new Proto.Value { ReferenceValue = "projects/demo/databases/(default)/documents/a/b" },
                    ["where"] = new Proto.Value { GeoPointValue = new Proto.LatLng { Latitude = 1.5, Longitude = -2.25 } },
                    ["nested"] = new Proto.Value
                    {
                        MapValue = new Proto.MapValue
                        {
                            Fields =
                            {
                                ["list"] = new Proto.Value
                                {
                                    ArrayValue = new Proto.ArrayValue { Values = { new Proto.Value { StringValue = "a" }, new Proto.Value { IntegerValue = -1 } } },
                                },
                            },
                        },
                    },
                },
            },
            UpdateMask = new Proto.DocumentMask { FieldPaths = { "processed", "status" } },
        };

        using var response = await server.Client.SendAsync(Binary("google.cloud.firestore.document.v1.updated", eventData.ToByteArray(), "application/protobuf"));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        var change = function.Changes.Single();
        var after = change.After!;
        Assert.Multiple(() =>
        {
            Assert.That(change.Path, Is.EqualTo("_ext-ris/tasks"));
            Assert.That(change.Before?["processed"], Is.EqualTo(2L));
            Assert.That(change.Before?.UpdateTime, Is.Null);
            Assert.That(after.UpdateTime, Is.EqualTo(updated));
            Assert.That(after["processed"], Is.EqualTo(3L));
            Assert.That(after["status"], Is.EqualTo("DONE"));
            Assert.That(after["ratio"], Is.EqualTo(0.75));
            Assert.That(after["done"], Is.EqualTo(true));
            Assert.That(after.Fields.ContainsKey("nothing") && after["nothing"] is null, Is.True);
            Assert.That(after["raw"], Is.EqualTo(new byte[] { 1, 2, 255 }));
            Assert.That(after["at"], Is.EqualTo(updated));
            Assert.That(after["ref"], Is.EqualTo("projects/demo/databases/(default)/documents/a/b"));
            Assert.That(after["where"], Is.EqualTo(new Dictionary<string, object?> { ["latitude"] = 1.5, ["longitude"] = -2.25 }));
            var nested = (IReadOnlyDictionary<string, object?>)after["nested"]!;
            Assert.That(nested["list"], Is.EqualTo(new object?[] { "a", -1L }));
        });
    }

    [Test]
    public async Task AuditLogEntryWithOperationFirstAndLast()
    {
        var function = new StubAuditLog("google.cloud.aiplatform.v1.IndexService.CreateIndex");
        await using var server = await StartAsync(function);
        var entry = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(CloudEvents, "testdata", "LogEntryData-pubsubCreateTopic.json")))!;
        entry["protoPayload"]!["serviceName"] = "aiplatform.googleapis.com";
        entry["protoPayload"]!["methodName"] = "google.cloud.aiplatform.v1.IndexService.CreateIndex";
        entry["protoPayload"]!["resourceName"] = "projects/demo/locations/us-central1/indexes/123";
        entry["operation"] = new JsonObject
        {
            ["id"] = "projects/demo/locations/us-central1/indexes/123/operations/456",
            ["producer"] = "aiplatform.googleapis.com",
            ["last"] = true,
        };

        using var response = await server.Client.SendAsync(Binary(AuditLogEventDecoder.WrittenType, Encoding.UTF8.GetBytes(entry.ToJsonString()),
            "application/json; charset=utf-8", ("ce-methodName", "google.cloud.aiplatform.v1.IndexService.CreateIndex")));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That(function.Events.Single(), Is.EqualTo(new AuditLogEvent(
            "aiplatform.googleapis.com",
            "google.cloud.aiplatform.v1.IndexService.CreateIndex",
            "projects/demo/locations/us-central1/indexes/123",
            "projects/demo/locations/us-central1/indexes/123/operations/456",
            First: false,
            Last: true)));
    }

    [Test]
    public async Task AuditLogFunctionAcknowledgesAndIgnoresOtherMethods()
    {
        var function = new StubAuditLog("google.cloud.aiplatform.v1.IndexEndpointService.DeployIndex");
        await using var server = await StartAsync(function);
        var envelope = await File.ReadAllTextAsync(Path.Combine(CloudEvents, "examples-structured", "LogEntryData-bigqueryjobcompleted.json"));

        using var response = await server.Client.SendAsync(Structured(envelope));

        Assert.That(response.IsSuccessStatusCode, Is.True);
        Assert.That(function.Events, Is.Empty);
        Assert.That(server.Logs.Lines.Any(line => line.Message.Contains("jobservice.jobcompleted", StringComparison.Ordinal)), Is.True);
    }

    [Test]
    public async Task StructuredAuditSampleWithCamelCaseAttributesIsDecoded()
    {
        var function = new StubAuditLog("jobservice.jobcompleted");
        await using var server = await StartAsync(function);
        var envelope = await File.ReadAllTextAsync(Path.Combine(CloudEvents, "examples-structured", "LogEntryData-bigqueryjobcompleted.json"));

        using var response = await server.Client.SendAsync(Structured(envelope));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That(function.Events.Single() is { ServiceName: "bigquery.googleapis.com", ResourceName: "projects/test-project/jobs/sample-job", OperationId: null, Last: false }, Is.True);
    }

    // Eventarc (deployed with --retry) redelivers anything but 2xx for up to 24 hours: an event that can never be
    // decoded is logged as an error and acknowledged, so it is not redelivered in vain.
    [Test]
    public async Task RequestWithoutCloudEventAttributesIsLoggedAndAcknowledged()
    {
        var function = new StubStorage(StorageEventKind.Finalized);
        await using var server = await StartAsync(function);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/") { Content = new StringContent("{}", Encoding.UTF8, "application/json") };

        using var response = await server.Client.SendAsync(request);

        Assert.That((int)response.StatusCode, Is.InRange(200, 299));
        Assert.That(function.Events, Is.Empty);
        Assert.That(server.Logs.Lines.Single(line => line.Level == LogLevel.Error).Message, Does.Contain("not a valid CloudEvent"));
    }

    [Test]
    public async Task AnEventWhoseDataCannotBeDecodedIsLoggedAndAcknowledged()
    {
        var function = new StubStorage(StorageEventKind.Finalized);
        await using var server = await StartAsync(function);

        using var response = await server.Client.SendAsync(Binary(StorageEventDecoder.FinalizedType, Encoding.UTF8.GetBytes("{\"bucket\": 12, "), "application/json"));

        Assert.That((int)response.StatusCode, Is.InRange(200, 299));
        Assert.That(function.Events, Is.Empty);
        var logged = server.Logs.Lines.Single(line => line.Level == LogLevel.Error).Message;
        Assert.That(logged, Does.Contain(StorageEventDecoder.FinalizedType).And.Contain("StorageObjectData"));
    }

    [Test]
    public async Task HandlerFailureIsInternalErrorSoTheEventIsRedelivered()
    {
        var function = new StubStorage(StorageEventKind.Finalized) { Failure = new TimeoutException("vertex slow") };
        await using var server = await StartAsync(function);
        var data = await File.ReadAllBytesAsync(Path.Combine(CloudEvents, "testdata", "StorageObjectData-simple.json"));

        using var response = await server.Client.SendAsync(Binary(StorageEventDecoder.FinalizedType, data, "application/json"));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.InternalServerError));
        Assert.That(server.Logs.Lines.Single(line => line.Level == LogLevel.Error).Exception, Is.SameAs(function.Failure));
    }

    private static Task<FunctionTestServer> StartAsync(object function) =>
        FunctionTestServer.StartAsync(endpoints => endpoints.MapFunction(FunctionEndpointRouteBuilderExtensions.AnyPath, function));

    private static HttpRequestMessage Binary(string type, byte[] data, string contentType, params (string Name, string Value)[] extensions)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/") { Content = new ByteArrayContent(data) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        request.Headers.Add("Ce-Specversion", "1.0");
        request.Headers.Add("Ce-Type", type);
        request.Headers.Add("Ce-Source", "//test.googleapis.com/projects/demo");
        request.Headers.Add("Ce-Id", Guid.NewGuid().ToString());
        request.Headers.Add("Ce-Time", "2026-03-01T12:00:00.123456Z");
        foreach (var (name, value) in extensions)
        {
            request.Headers.Add(name, value);
        }

        return request;
    }

    private static HttpRequestMessage Structured(string envelope) =>
        new(HttpMethod.Post, "/")
        {
            Content = new StringContent(envelope, Encoding.UTF8, "application/cloudevents+json"),
        };

    private sealed class StubStorage(StorageEventKind kind) : IStorageFunction
    {
        public StorageEventKind Kind => kind;

        public List<StorageObjectEvent> Events { get; } = [];

        public Exception? Failure { get; init; }

        public Task HandleAsync(StorageObjectEvent storageEvent, CancellationToken cancellationToken)
        {
            Events.Add(storageEvent);
            return Failure is null ? Task.CompletedTask : Task.FromException(Failure);
        }
    }

    private sealed class StubDocument : IDocumentFunction
    {
        public List<DocumentChange> Changes { get; } = [];

        public Task HandleAsync(DocumentChange change, CancellationToken cancellationToken)
        {
            Changes.Add(change);
            return Task.CompletedTask;
        }
    }

    private sealed class StubAuditLog(string methodName) : IAuditLogFunction
    {
        public string MethodName => methodName;

        public List<AuditLogEvent> Events { get; } = [];

        public Task HandleAsync(AuditLogEvent auditEvent, CancellationToken cancellationToken)
        {
            Events.Add(auditEvent);
            return Task.CompletedTask;
        }
    }
}
