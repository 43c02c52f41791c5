using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Gcp.Hosting;

namespace ReverseImageSearch.Tests.Gcp.Hosting;

public class TaskProtocolTests
{
    private StubTask _function = null!;
    private FunctionTestServer _server = null!;

    [SetUp]
    public async Task StartServer()
    {
        _function = new StubTask();
        _server = await FunctionTestServer.StartAsync(endpoints => endpoints.MapFunction(FunctionEndpointRouteBuilderExtensions.AnyPath, _function));
    }

    [TearDown]
    public async Task StopServer() => await _server.DisposeAsync();

    [Test]
    public async Task DeliveryCarriesDataTaskNameAndRetryCount()
    {
        using var request = Delivery("""{"data":{"chunk":7}}""");
        request.Headers.Add("X-CloudTasks-TaskName", "backfill-3f2a");
        request.Headers.Add("X-CloudTasks-TaskRetryCount", "3");
        request.Headers.Add("X-CloudTasks-QueueName", "ext-ris-backfillTask");
        using var response = await _server.Client.SendAsync(request);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That(await response.Content.ReadAsByteArrayAsync(), Is.Empty);
        var delivery = _function.Deliveries.Single();
        Assert.That(delivery.TaskName, Is.EqualTo("backfill-3f2a"));
        Assert.That(delivery.RetryCount, Is.EqualTo(3));
        Assert.That(delivery.Data.GetProperty("chunk").GetInt32(), Is.EqualTo(7));
    }

    [Test]
    public async Task DeliveryWithoutCloudTasksHeadersIsAFirstAttemptWithoutName()
    {
        using var request = Delivery("""{"data":null}""");
        using var response = await _server.Client.SendAsync(request);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That(_function.Deliveries.Single() is { TaskName: null, RetryCount: 0 }, Is.True);
    }

    [Test]
    public async Task AuthorizationIsNotVerifiedHere()
    {
        using var request = Delivery("""{"data":1}""");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer an-oidc-token-cloud-run-already-checked");
        using var response = await _server.Client.SendAsync(request);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
    }

    [TestCase("""{"data":1,"more":2}""")]
    [TestCase("""not json""")]
    public async Task MalformedDeliveryIsBadRequest(string body)
    {
        using var request = Delivery(body);
        using var response = await _server.Client.SendAsync(request);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(_function.Deliveries, Is.Empty);
    }

    [Test]
    public async Task GetIsBadRequest()
    {
        using var response = await _server.Client.GetAsync(new Uri("/", UriKind.Relative));
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
    }

    [Test]
    public async Task FunctionExceptionMapsToItsStatus()
    {
        _function.Failure = new FunctionException(FunctionErrorCode.FailedPrecondition, "index not deployed");
        using var request = Delivery("""{"data":1}""");
        using var response = await _server.Client.SendAsync(request);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync());
        Assert.That(body?["error"]?["status"]?.GetValue<string>(), Is.EqualTo("FAILED_PRECONDITION"));
        Assert.That(body?["error"]?["message"]?.GetValue<string>(), Is.EqualTo("index not deployed"));
    }

    [Test]
    public async Task UnexpectedExceptionIsInternalSoCloudTasksRetries()
    {
        _function.Failure = new IOException("storage hiccup");
        using var request = Delivery("""{"data":1}""");
        using var response = await _server.Client.SendAsync(request);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.InternalServerError));
        Assert.That(await response.Content.ReadAsStringAsync(), Does.Not.Contain("hiccup"));
        Assert.That(_server.Logs.Lines.Single(line => line.Level == LogLevel.Error).Exception, Is.SameAs(_function.Failure));
    }

    private static HttpRequestMessage Delivery(string body) =>
        new(HttpMethod.Post, "/")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };

    private sealed class StubTask : ITaskFunction
    {
        public List<TaskDelivery> Deliveries { get; } = [];

        public Exception? Failure { get; set; }

        public Task HandleAsync(TaskDelivery task, CancellationToken cancellationToken)
        {
            Deliveries.Add(task with { Data = task.Data.Clone() }); // the data is readable during the call only
            return Failure is null ? Task.CompletedTask : Task.FromException(Failure);
        }
    }
}
