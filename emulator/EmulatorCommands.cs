using System.Globalization;
using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Gcp.Auth;
using ReverseImageSearch.Gcp.Hosting;
using ReverseImageSearch.Local.Database;
using ReverseImageSearch.Local.Tasks;
using OpenTelemetry.Metrics;
using Spectre.Console;

namespace ReverseImageSearch.Emulator;

/// <summary>The emulator's three commands. Each returns the process exit code.</summary>
public static class EmulatorCommands
{
    public const int Success = 0;
    public const int Failure = 1;

    /// <summary>Skipped images /api/status lists (its images.skipped counts them all).</summary>
    public const int StatusSkippedListed = 500;

    public static async Task<int> ServeAsync(
        DirectoryInfo? images, DirectoryInfo data, string host, int port, IReadOnlyList<string> allowOrigins, bool metrics, CancellationToken cancellationToken)
    {
        // Checked before anything starts: a taken port or data folder is a wrong argument, not a crash.
        if (ProcessNames.PortProblem(host, port) is { } portProblem)
        {
            return ArgumentRules.Report(ArgumentRules.Describe("--port", port.ToString(CultureInfo.InvariantCulture), portProblem));
        }

        using var dataLock = DataFolderLock.TryAcquire(data, out var heldBy);
        if (dataLock is null)
        {
            return ArgumentRules.Report(ArgumentRules.Describe("--data", data.FullName, $"is in use by {heldBy}: one serve or index per data folder"));
        }

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.WebHost.UseUrls($"http://{host}:{port}");
        QuietFrameworkLogs(builder.Logging);
        ShutdownSignals.Configure(builder.Services);
        var imagesFolder = images?.FullName ?? SampleImages.EnsureCreated(Path.Combine(data.FullName, "sample-images"));
        if (!TryAddStack(builder.Services, new LocalStackOptions(imagesFolder, data.FullName, builder.Configuration), out var options))
        {
            return Failure;
        }

        // An empty variable means unset, as the token verifier reads it.
        var authEmulator = string.IsNullOrWhiteSpace(builder.Configuration["FIREBASE_AUTH_EMULATOR_HOST"]) ? null : builder.Configuration["FIREBASE_AUTH_EMULATOR_HOST"];
        builder.Services.AddFirebaseCallerAuthentication(builder.Configuration, options.ProjectId);
        builder.Services.AddFunctionHealth();
        builder.Services.AddFunctionTelemetry(builder.Configuration, metrics ? exporter => exporter.AddPrometheusExporter() : null);
        await using var app = builder.Build();
        LocalMetrics.Observe(app.Services);

        var callablePath = CallablePath(options);
        var queryIndex = app.Services.GetRequiredService<QueryIndex>();
        var trustsTokenless = authEmulator is null && TrustedLocalCaller.IsLoopbackHost(host);
        app.MapCallableFunction(callablePath, trustsTokenless ? new TrustedLocalCaller(queryIndex) : queryIndex,
            origins: CallableOrigins.LocalPages(allowOrigins, "Start serve with --allow-origin to allow another page."));
        app.MapFunctionHealth();
        if (metrics)
        {
            app.MapPrometheusScrapingEndpoint();
        }

        app.MapGet("/", () => Results.Stream(SearchPage(), "text/html; charset=utf-8"));
        app.MapGet("/images/{**name}", (string name, IObjectStore store, CancellationToken ct) => ServeImageAsync(store, options, name, ct));
        app.MapGet("/api/status", (IServiceProvider services, CancellationToken ct) => StatusAsync(services, callablePath, ct));

        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await app.StopAsync(CancellationToken.None);
            return Stopped();
        }
        catch (IOException ex) when (ex.InnerException is System.Net.Sockets.SocketException or Microsoft.AspNetCore.Connections.AddressInUseException)
        {
            // Taken between the check above and now.
            return ArgumentRules.Report(ArgumentRules.Describe("--port", port.ToString(CultureInfo.InvariantCulture), "cannot be listened on: " + ex.Message));
        }

        AnsiConsole.MarkupLineInterpolated($"[bold]Reverse image search[/] serving [link]http://{host}:{port}/[/]  (Ctrl+C stops)");
        AnsiConsole.MarkupLineInterpolated($"  callable   POST http://{host}:{port}{callablePath}");
        AnsiConsole.MarkupLineInterpolated($"  images     {imagesFolder}{(images is null ? " (generated sample set)" : "")}");
        AnsiConsole.MarkupLineInterpolated($"  data       {data.FullName}");
        AnsiConsole.MarkupLineInterpolated($"  project    {options.ProjectId}, location {options.Location}, instance {options.InstanceId}");
        AnsiConsole.MarkupLineInterpolated($"  callers    {(authEmulator is not null ? $"Firebase ID tokens from the Auth emulator at {authEmulator}"
            : trustsTokenless ? "trusted without a token (loopback only); tokens that are sent must be valid Firebase ID tokens"
            : $"must send a Firebase ID token ({host} is not a loopback address)")}");
        if (metrics)
        {
            AnsiConsole.MarkupLineInterpolated($"  metrics    GET http://{host}:{port}/metrics (Prometheus)");
        }

        AnsiConsole.MarkupLineInterpolated($"  web pages  loopback pages and this one{(allowOrigins.Count > 0 ? ", " + string.Join(", ", allowOrigins) : "")}");

        // Returns once the signal came and the host stopped: deliveries in flight gave their tasks back.
        await app.WaitForShutdownAsync(cancellationToken);
        return Stopped();
    }

    public static async Task<int> IndexAsync(DirectoryInfo images, DirectoryInfo data, CancellationToken cancellationToken)
    {
        using var dataLock = DataFolderLock.TryAcquire(data, out var heldBy);
        if (dataLock is null)
        {
            return ArgumentRules.Report(ArgumentRules.Describe("--data", data.FullName, $"is in use by {heldBy}: one serve or index per data folder"));
        }

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [] });
        QuietFrameworkLogs(builder.Logging);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        ShutdownSignals.Configure(builder.Services);
        if (!TryAddStack(builder.Services, new LocalStackOptions(images.FullName, data.FullName, builder.Configuration), out var options))
        {
            return Failure;
        }

        using var host = builder.Build();
        // Opened before the host starts, so a state file it cannot use ends the command in one line, not a logged stack trace.
        host.Services.GetRequiredService<LocalDatabase>();
        try
        {
            await host.StartAsync(cancellationToken);
            var outcome = await IndexProgress.RunAsync(host.Services, options, images.FullName, cancellationToken);
            (await IndexReport.ReadAsync(host.Services, cancellationToken)).Print(data.FullName);
            return outcome is null ? Success : Fail(outcome);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("Interrupted: run the same index command again to finish; the work done so far is kept.");
            return Failure;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    public static async Task<int> QueryAsync(DirectoryInfo data, QueryRequest request, string format, CancellationToken cancellationToken)
    {
        if (!data.Exists)
        {
            return ArgumentRules.Report(ArgumentRules.Describe("--data", data.FullName, "must be a folder holding an index: run 'index' or 'serve' on it first"));
        }

        var services = new ServiceCollection();
        services.AddLogging(logging => logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning));
        var configuration = new ConfigurationBuilder().AddEnvironmentVariables().Build();

        // The query reads the index and writes nothing, so a data folder it may not write serves as well;
        // the images folder only matters to writers.
        if (!TryAddStack(services, new LocalStackOptions(data.FullName, data.FullName, configuration, ReadOnly: true), out var options))
        {
            return Failure;
        }

        await using var provider = services.BuildServiceProvider();
        var state = await provider.GetRequiredService<CoordinationState>().ReadIndexAvailabilityAsync(cancellationToken);
        // Deployed is set once queries are answered: at INDEX_DEPLOYED with vertex, always with firestore.
        if (state.Deployed is null)
        {
            return Fail($"The index in {data.FullName} cannot answer queries: {state.Describe()}. Run 'index' first.");
        }

        var queries = QueryFiles.Expand(request.Files);
        if (queries.Count == 0 && request.StoredPaths.Count == 0)
        {
            return Fail("No query images found in " + string.Join(", ", request.Files));
        }

        var search = new LocalSearch(provider.GetRequiredService<QueryIndex>(), options);
        var printer = new QueryPrinter(format, Console.Out);
        var failures = 0;
        var outcomes = new List<(string DisplayName, QueryOutcome Result)>();
        foreach (var batch in queries.Chunk(options.MaxQueryImages))
        {
            outcomes.AddRange((await search.RunAsync(batch, request.Neighbors, request.Folder, cancellationToken)).Select(r => (r.Query.DisplayName, r.Result)));
        }

        foreach (var batch in request.StoredPaths.Chunk(options.MaxQueryImages))
        {
            outcomes.AddRange(await search.RunStoredAsync(batch, request.Neighbors, request.Folder, cancellationToken));
        }

        foreach (var (query, result) in outcomes)
        {
            if (result.Error is { } error)
            {
                failures++;
                await Console.Error.WriteLineAsync($"{query}: {error}");
                continue;
            }

            printer.Add(query, result.Neighbors!);
        }

        printer.Flush();
        return failures == 0 ? Success : Failure;
    }

    /// <summary>Runs a command; local state it cannot use ends it with that one line on stderr, not a stack trace.</summary>
    public static async Task<int> ReportingUnusableState(Func<Task<int>> command)
    {
        try
        {
            return await command();
        }
        catch (LocalDatabaseUnusableException e)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return Failure;
        }
    }

    public static string CallablePath(ExtensionOptions options) =>
        $"/{options.ProjectId}/{options.Location}/{options.DeployedFunctionName("queryIndex")}";

    private static bool TryAddStack(IServiceCollection services, LocalStackOptions local, out ExtensionOptions options)
    {
        try
        {
            options = LocalStack.LoadOptions(local.Configuration);
            services.AddLocalStack(local);
            return true;
        }
        catch (InvalidConfigurationException ex)
        {
            Console.Error.WriteLine(ex.Message);
            options = null!;
            return false;
        }
    }

    private static int Stopped()
    {
        AnsiConsole.MarkupLine("Stopped.");
        return Success;
    }

    private static int Fail(string reason)
    {
        AnsiConsole.MarkupLineInterpolated($"[red]{reason}[/]");
        return Failure;
    }

    private static void QuietFrameworkLogs(ILoggingBuilder logging)
    {
        logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        logging.AddFilter("Microsoft.Hosting", LogLevel.Warning);
    }

    private static Stream SearchPage() =>
        Assembly.GetExecutingAssembly().GetManifestResourceStream("index.html")
        ?? throw new InvalidOperationException("The search page is missing from the emulator's resources.");

    private static async Task<IResult> ServeImageAsync(IObjectStore store, ExtensionOptions options, string name, CancellationToken cancellationToken)
    {
        try
        {
            var metadata = await store.GetMetadataAsync(options.ImageBucket, name, cancellationToken);
            if (metadata is null)
            {
                return Results.NotFound();
            }

            var bytes = await store.ReadAsync(options.ImageBucket, name, cancellationToken);
            return Results.Bytes(bytes, metadata.ContentType ?? "application/octet-stream");
        }
        catch (ArgumentException)
        {
            return Results.BadRequest();
        }
        catch (ObjectNotFoundException)
        {
            return Results.NotFound();
        }
    }

    private static async Task<IResult> StatusAsync(IServiceProvider services, string callablePath, CancellationToken cancellationToken)
    {
        var health = await FunctionHealth.CheckAsync(services, cancellationToken);
        try
        {
            return await FullStatusAsync(services, callablePath, health, cancellationToken);
        }
        catch (LocalDatabaseUnusableException)
        {
            // The state cannot be read: the health says why and how to recover.
            return Results.Json(new { callablePath, health }, CoreJson.Options);
        }
    }

    private static async Task<IResult> FullStatusAsync(IServiceProvider services, string callablePath, FunctionHealthSummary health, CancellationToken cancellationToken)
    {
        var state = services.GetRequiredService<CoordinationState>();
        var run = await state.ReadBackfillRunAsync(cancellationToken);
        var metadata = await state.ReadMetadataAsync(cancellationToken);
        var stats = await services.GetRequiredService<SqliteTaskQueue>().GetStatsAsync(cancellationToken);
        var report = await IndexReport.ReadAsync(services, cancellationToken);
        return Results.Json(new
        {
            callablePath,
            health,
            indexBackend = services.GetRequiredService<ExtensionOptions>().IndexNeedsBuild ? "vertex" : "firestore",
            indexStatus = metadata?.Status,
            error = metadata?.Error,
            distanceMeasure = services.GetRequiredService<ExtensionOptions>().DistanceMeasure.ToParameterValue(),
            tasks = run is null ? null : new { totalLength = run.TotalLength, processedLength = run.ProcessedLength, status = run.Status },
            pendingTasks = stats.Outstanding,
            deadTasks = stats.Dead,
            images = new { indexed = report.Indexed, skipped = report.Skipped.Count, failed = report.Failures.Count },
            skipped = report.Skipped.Take(StatusSkippedListed),
            failures = report.Failures,
        }, CoreJson.Options);
    }
}

/// <summary>
/// Locally, without the Auth emulator, callers without a token are trusted while the emulator listens on loopback
/// only, for its owner; bound to any other address it is reachable by others and every caller must sign in.
/// A token that is sent is still verified by the callable protocol.
/// </summary>
internal sealed class TrustedLocalCaller(ICallableFunction inner) : ICallableFunction
{
    public static readonly CallerIdentity LocalUser = new("local-user", "local");

    /// <summary>Whether <paramref name="host"/> (the --host value) reaches this machine's loopback only.</summary>
    public static bool IsLoopbackHost(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
        || (System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var address) && System.Net.IPAddress.IsLoopback(address));

    public Task<object?> HandleAsync(CallableRequest request, CancellationToken cancellationToken) =>
        inner.HandleAsync(request.Auth is null ? request with { Auth = LocalUser } : request, cancellationToken);
}
