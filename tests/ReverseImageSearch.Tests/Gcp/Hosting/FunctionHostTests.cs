using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Gcp.Hosting;

namespace ReverseImageSearch.Tests.Gcp.Hosting;

public class FunctionHostTests
{
    private static readonly string[] ValidConfiguration =
    [
        "--PROJECT_ID=demo-project", "--EXT_INSTANCE_ID=ris", "--LOCATION=us-central1", "--IMG_BUCKET=demo-bucket",
    ];

    [Test]
    public async Task ServesTheFunctionAtEveryPathOnPort()
    {
        var errors = new StringWriter();
        var app = FunctionHost.TryBuild<EchoCallable>([.. ValidConfiguration, "--PORT=0"], errors);
        Assert.That(app, Is.Not.Null, errors.ToString());
        await using (app!)
        {
            await app.StartAsync();
            var address = new Uri(app.Urls.Single().Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));
            using var client = new HttpClient { BaseAddress = address };

            foreach (var path in new[] { "/", "/ext-ris-queryIndex", "/demo-project/us-central1/ext-ris-queryIndex" })
            {
                using var content = new StringContent("""{"data":{"x":1}}""", Encoding.UTF8, "application/json");
                using var response = await client.PostAsync(new Uri(path, UriKind.Relative), content);
                Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), path);
                var body = await response.Content.ReadFromJsonAsync<JsonElement>();
                Assert.That(body.GetProperty("result").GetProperty("x").GetInt32(), Is.EqualTo(1), path);
            }

            using var get = await client.GetAsync(new Uri("/anything", UriKind.Relative));
            Assert.That(get.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
            await app.StopAsync();
        }
    }

    [TestCase("--K_SERVICE=ext-ris-queryIndex", "cloud-logging")]
    [TestCase("--UNRELATED=1", "simple")]
    public async Task ConsoleLogsAreCloudLoggingJsonOnlyWhenDeployed(string setting, string formatter)
    {
        var app = FunctionHost.TryBuild<EchoCallable>([.. ValidConfiguration, setting], TextWriter.Null);
        await using (app!)
        {
            var options = app!.Services.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>().CurrentValue;
            Assert.That(options.FormatterName ?? "simple", Is.EqualTo(formatter));
        }
    }

    [Test]
    public void InvalidVariableIsReportedInOneLineWithoutStarting()
    {
        var errors = new StringWriter();
        var app = FunctionHost.TryBuild<EchoCallable>([.. ValidConfiguration, "--DISTANCE_MEASURE=FOO"], errors);
        Assert.That(app, Is.Null);
        Assert.That(errors.ToString(), Is.EqualTo(
            "Invalid configuration: DISTANCE_MEASURE='FOO' must be one of SQUARED_L2_DISTANCE, L1_DISTANCE, COSINE_DISTANCE, DOT_PRODUCT_DISTANCE"
            + Environment.NewLine));
    }

    [Test]
    public async Task DeployedFunctionExitsWithCodeOneAndOneLineForAnInvalidVariable()
    {
        var assembly = Path.Combine(
            TestPaths.RepoRoot, "functions", "QueryIndex", "bin", BuildConfiguration(), "net10.0", "QueryIndex.dll");
        Assert.That(File.Exists(assembly), Is.True, $"{assembly} is built with the tests (the emulator references it)");
        var start = new ProcessStartInfo("dotnet", [assembly])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        start.Environment["PROJECT_ID"] = "demo-project";
        start.Environment["EXT_INSTANCE_ID"] = "ris";
        start.Environment["LOCATION"] = "us-central1";
        start.Environment["IMG_BUCKET"] = "demo-bucket";
        start.Environment["DISTANCE_MEASURE"] = "FOO";
        start.Environment["PORT"] = "0";

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();

        Assert.That(process.ExitCode, Is.EqualTo(1));
        Assert.That(stderr.TrimEnd('\n').Split('\n'), Has.Length.EqualTo(1), stderr);
        Assert.That(stderr, Does.StartWith("Invalid configuration: DISTANCE_MEASURE='FOO'"));
        Assert.That(await stdout, Is.Empty);
    }

    // The functions are built in the same configuration as this test assembly.
    private static string BuildConfiguration() =>
        new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;

    internal sealed class EchoCallable : ICallableFunction
    {
        public Task<object?> HandleAsync(CallableRequest request, CancellationToken cancellationToken) =>
            Task.FromResult<object?>(request.Data);
    }
}
