using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Gcp.Http;
using ReverseImageSearch.Tests.Gcp.Contract;

namespace ReverseImageSearch.Tests.Gcp.Tasks;

public sealed class CloudTasksQueueTests : ContractTestBase
{
    private const string Create = "cloudtasks.projects.locations.queues.tasks.create";
    private const string QueuePath = "projects/demo-proj/locations/us-central1/queues/ext-ris-backfillTask";
    private ServiceProvider _services = null!;
    private ITaskQueue _queue = null!;
    private ConcurrentDictionary<string, byte> _names = null!;

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    private void Build(Action<GcpAdapterOptions>? adapters = null, bool knownQueue = true)
    {
        _names = new();
        Server.Handle(ContractServer.MetadataEmailMethod, _ => new Reply(200, Bytes: Encoding.UTF8.GetBytes("123-compute@developer.gserviceaccount.com"), BytesContentType: "application/text"));
        Server.Handle(Create, r =>
        {
            if (!knownQueue)
            {
                return Reply.Error(404, "NOT_FOUND", "Requested entity was not found.");
            }

            var task = r.Json.GetProperty("task");
            var name = task.TryGetProperty("name", out var n) ? n.GetString()! : $"{QueuePath}/tasks/{Guid.NewGuid():N}";
            return _names.TryAdd(name, 0)
                ? Reply.Ok(JsonSerializer.Serialize(new { name, createTime = "2026-01-01T00:00:00Z", view = "BASIC" }))
                : Reply.Error(409, "ALREADY_EXISTS", "Requested entity already exists");
        });
        _services = GcpTestHost.Build(
            Server,
            adapters,
            before: s => s.AddSingleton<TimeProvider>(new FixedTime(new DateTimeOffset(2026, 5, 6, 7, 8, 9, TimeSpan.Zero))));
        _queue = _services.GetRequiredService<ITaskQueue>();
    }

    [TearDown]
    public void DisposeServices() => _services?.Dispose();

    [Test]
    public async Task EnqueueCreatesAFirebaseStyleHttpTask()
    {
        Build(a => a.ServiceAccountEmail = "ext-ris@demo-proj.iam.gserviceaccount.com");
        var created = await _queue.EnqueueAsync("backfillTask", new { taskId = "t1", objects = new[] { "a.jpg" } });

        Assert.That(created, Is.True);
        var request = Server.RequestsOf(Create).Single();
        Assert.That(request.RawPath, Is.EqualTo($"/v2/{QueuePath}/tasks"));
        var task = request.Json.GetProperty("task");
        var http = task.GetProperty("httpRequest");
        Assert.Multiple(() =>
        {
            Assert.That(task.TryGetProperty("name", out _), Is.False);
            Assert.That(task.TryGetProperty("scheduleTime", out _), Is.False);
            Assert.That(http.GetProperty("httpMethod").GetString(), Is.EqualTo("POST"));
            Assert.That(http.GetProperty("url").GetString(), Is.EqualTo("https://us-central1-demo-proj.cloudfunctions.net/ext-ris-backfillTask"));
            Assert.That(http.GetProperty("headers").GetRawText(), Is.EqualTo("""{"Content-Type":"application/json"}"""));
            Assert.That(Encoding.UTF8.GetString(Convert.FromBase64String(http.GetProperty("body").GetString()!)),
                Is.EqualTo("""{"data":{"taskId":"t1","objects":["a.jpg"]}}"""));
            Assert.That(http.GetProperty("oidcToken").GetRawText(), Is.EqualTo("""{"serviceAccountEmail":"ext-ris@demo-proj.iam.gserviceaccount.com"}"""));
        });
        Assert.That(Server.RequestsOf(ContractServer.MetadataEmailMethod), Is.Empty);
    }

    [Test]
    public async Task TheServiceAccountComesFromTheMetadataServerWhenNotConfiguredAndIsAskedOnce()
    {
        Build();
        await _queue.EnqueueAsync("datapointWriteTask", new { operation = "update" });
        await _queue.EnqueueAsync("datapointWriteTask", new { operation = "remove" });
        var tasks = Server.RequestsOf(Create);
        Assert.That(tasks.Select(t => t.Json.GetProperty("task").GetProperty("httpRequest").GetProperty("oidcToken").GetProperty("serviceAccountEmail").GetString()),
            Is.All.EqualTo("123-compute@developer.gserviceaccount.com"));
        Assert.That(tasks[0].RawPath, Does.EndWith("/queues/ext-ris-datapointWriteTask/tasks"));
        Assert.That(Server.RequestsOf(ContractServer.MetadataEmailMethod), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task DelayIdAndDeadlineBecomeScheduleTimeNameAndDispatchDeadline()
    {
        Build(a =>
        {
            a.ServiceAccountEmail = "sa@p.iam.gserviceaccount.com";
            a.TaskDispatchDeadline = TimeSpan.FromMinutes(30);
        });
        Assert.That(await _queue.EnqueueAsync("backfillTask", new { n = 1 }, new TaskOptions(TimeSpan.FromHours(1), "chunk-0001_a")), Is.True);
        var task = Server.RequestsOf(Create).Single().Json.GetProperty("task");
        Assert.That(task.GetProperty("name").GetString(), Is.EqualTo($"{QueuePath}/tasks/chunk-0001_a"));
        Assert.That(task.GetProperty("dispatchDeadline").GetString(), Is.EqualTo("1800s"));
        Assert.That(task.GetProperty("scheduleTime").GetString(), Is.EqualTo("2026-05-06T08:08:09.000Z"));
    }

    [Test]
    public async Task ASecondEnqueueWithTheSameIdIsFalse()
    {
        Build(a => a.ServiceAccountEmail = "sa@p.iam.gserviceaccount.com");
        Assert.That(await _queue.EnqueueAsync("backfillTask", new { n = 1 }, new TaskOptions(Id: "dup")), Is.True);
        Assert.That(await _queue.EnqueueAsync("backfillTask", new { n = 1 }, new TaskOptions(Id: "dup")), Is.False);
    }

    [Test]
    public void AnUnnamedTaskAnswered409IsAnError()
    {
        Build(a => a.ServiceAccountEmail = "sa@p.iam.gserviceaccount.com");
        Server.FailNext(Create, Reply.Error(409, "ALREADY_EXISTS", "exists"));
        Assert.ThrowsAsync<ServiceException>(() => _queue.EnqueueAsync("backfillTask", new { n = 1 }));
    }

    [Test]
    public void AMissingQueueSaysToRunDeploy()
    {
        Build(a => a.ServiceAccountEmail = "sa@p.iam.gserviceaccount.com", knownQueue: false);
        var e = Assert.ThrowsAsync<ServiceException>(() => _queue.EnqueueAsync("backfillTask", new { n = 1 }));
        Assert.That(e!.Status, Is.EqualTo("NOT_FOUND"));
        Assert.That(e.Message, Does.Contain(QueuePath).And.Contain("./deploy.sh"));
    }

    [TestCase("has space")]
    [TestCase("slash/no")]
    [TestCase("")]
    public void AnInvalidIdIsRejectedBeforeAnyRequest(string id)
    {
        Build(a => a.ServiceAccountEmail = "sa@p.iam.gserviceaccount.com");
        Assert.ThrowsAsync<ArgumentException>(() => _queue.EnqueueAsync("backfillTask", new { n = 1 }, new TaskOptions(Id: id)));
        Assert.That(Server.RequestsOf(Create), Is.Empty);
    }

    [Test]
    public async Task TheFunctionsBaseIsConfigurable()
    {
        Build(a => a.ServiceAccountEmail = "sa@p.iam.gserviceaccount.com");
        _services.Dispose();
        _services = GcpTestHost.Build(Server, a => a.ServiceAccountEmail = "sa@p.iam.gserviceaccount.com", e => e.FunctionsBase = "https://fn.example/{PROJECT_ID}/{LOCATION}/");
        await _services.GetRequiredService<ITaskQueue>().EnqueueAsync("backfillTask", new { n = 1 });
        Assert.That(Server.RequestsOf(Create).Single().Json.GetProperty("task").GetProperty("httpRequest").GetProperty("url").GetString(),
            Is.EqualTo("https://fn.example/demo-proj/us-central1/ext-ris-backfillTask"));
    }

    // deploy.sh sets FUNCTION_URL_TEMPLATE: the task-queue functions accept internal traffic only, and Cloud Run counts
    // Cloud Tasks deliveries as internal at the service's run.app URL (service = the function's name in lower case).
    [Test]
    public async Task TasksGoToTheRunAppUrlOfTheTemplate()
    {
        var configured = GcpEndpoints.FromConfiguration(new ConfigurationBuilder()
            .AddInMemoryCollection([new("FUNCTION_URL_TEMPLATE", "https://{FUNCTION}-123456789.us-central1.run.app")]).Build());
        Build(a => a.ServiceAccountEmail = "sa@p.iam.gserviceaccount.com");
        _services.Dispose();
        _services = GcpTestHost.Build(Server, a => a.ServiceAccountEmail = "sa@p.iam.gserviceaccount.com",
            e => e.FunctionUrlTemplate = configured.FunctionUrlTemplate);
        await _services.GetRequiredService<ITaskQueue>().EnqueueAsync("datapointWriteTask", new { n = 1 });
        Assert.That(Server.RequestsOf(Create).Single().Json.GetProperty("task").GetProperty("httpRequest").GetProperty("url").GetString(),
            Is.EqualTo("https://ext-ris-datapointwritetask-123456789.us-central1.run.app"));
    }
}
