using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Embedding;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Local;
using ReverseImageSearch.Local.Database;
using ReverseImageSearch.Local.Documents;
using ReverseImageSearch.Local.Storage;
using ReverseImageSearch.Local.Tasks;
using ReverseImageSearch.Local.VectorIndex;

namespace ReverseImageSearch.Emulator;

/// <param name="ImagesDirectory">The folder that plays the images bucket (IMG_BUCKET).</param>
/// <param name="DataDirectory">Where the documents, tasks, datapoint files and the index live.</param>
/// <param name="Configuration">The extension's parameters (environment variables); local defaults fill the gaps.</param>
/// <param name="IndexBuildDelay">Artificial time a local index takes to build and to deploy, to exercise the waiting paths.</param>
/// <param name="ReadOnly">Only read the data folder (a query): the state file is opened read-only and nothing is created.</param>
public sealed record LocalStackOptions(
    string ImagesDirectory,
    string DataDirectory,
    IConfiguration Configuration,
    LocalBucketWatcherOptions? Watcher = null,
    TimeSpan? IndexBuildDelay = null,
    TaskQueueDispatcherOptions? Dispatcher = null,
    bool ReadOnly = false);

/// <summary>
/// The nine functions on the embedded adapters, wired as Google Cloud wires them: task queues, storage
/// events from the folder watcher, the Firestore update of the tasks document and the Vector Search audit
/// entries all arrive through the durable SQLite task queue, which retries every one of them.
/// </summary>
public static class LocalStack
{
    /// <summary>Values the local run uses where the environment sets none (deployed, the platform sets them).</summary>
    public static readonly IReadOnlyDictionary<string, string?> LocalDefaults = new Dictionary<string, string?>
    {
        ["PROJECT_ID"] = "demo-reverse-image-search",
        ["EXT_INSTANCE_ID"] = "storage-reverse-image-search",
        ["LOCATION"] = "us-central1",
        ["IMG_BUCKET"] = "local-images",
        ["PENDING_WRITE_RETRY_SECONDS"] = "2",
    };

    public const string BackfillTriggerQueue = "backfillTrigger";

    /// <summary>Reads the extension's parameters over the local defaults; throws InvalidConfigurationException.</summary>
    public static ExtensionOptions LoadOptions(IConfiguration configuration) =>
        ExtensionOptionsLoader.Load(new ConfigurationBuilder()
            .AddInMemoryCollection(LocalDefaults)
            .AddConfiguration(configuration)
            .Build());

    public static IServiceCollection AddLocalStack(this IServiceCollection services, LocalStackOptions local)
    {
        var options = LoadOptions(local.Configuration);
        var dataDirectory = Path.GetFullPath(local.DataDirectory);
        if (!local.ReadOnly)
        {
            Directory.CreateDirectory(dataDirectory);
        }

        services.AddSingleton(local);
        services.AddReverseImageSearchCore(options).AddImageEmbedder();

        services.AddLocalDocumentsAndTasks(Path.Combine(dataDirectory, "state.sqlite"), [new CoordinationDocuments(options).Tasks], local.ReadOnly);
        services.AddHealthChecks().AddCheck<LocalDatabaseHealthCheck>(LocalDatabaseHealthCheck.Name);
        if (local.Dispatcher is not null)
        {
            services.AddSingleton(local.Dispatcher);
        }

        services.AddSingleton(sp => new LocalObjectStore(
            new Dictionary<string, string> { [options.ImageBucket] = Path.GetFullPath(local.ImagesDirectory) },
            Path.Combine(dataDirectory, "buckets"),
            sp.GetRequiredService<ILogger<LocalObjectStore>>()));
        services.AddSingleton<IObjectStore>(sp => sp.GetRequiredService<LocalObjectStore>());
        services.AddSingleton(sp => new LocalVectorIndexService(
            options.ProjectId,
            options.Location,
            Path.Combine(dataDirectory, "vector-search"),
            sp.GetRequiredService<IObjectStore>(),
            sp.GetRequiredService<ITaskQueue>(),
            sp.GetRequiredService<ILogger<LocalVectorIndexService>>(),
            local.IndexBuildDelay,
            local.IndexBuildDelay));
        // INDEX_BACKEND=firestore locally: the same in-process index with Firestore's lifecycle (no build, no deployment).
        services.AddSingleton(sp => new LocalCollectionVectorIndex(
            Path.Combine(dataDirectory, "vector-collection"), options.DistanceMeasure, sp.GetRequiredService<ILogger<LocalCollectionVectorIndex>>()));
        services.AddSingleton<IVectorIndexService>(sp => options.IndexNeedsBuild
            ? sp.GetRequiredService<LocalVectorIndexService>()
            : sp.GetRequiredService<LocalCollectionVectorIndex>());
        services.AddSingleton(sp => new LocalBucketWatcher(
            sp.GetRequiredService<LocalObjectStore>(),
            options.ImageBucket,
            sp.GetRequiredService<ITaskQueue>(),
            dataDirectory,
            local.Watcher ?? new LocalBucketWatcherOptions(),
            sp.GetRequiredService<ILogger<LocalBucketWatcher>>()));

        services.AddSingleton<BackfillTrigger>();
        services.AddSingleton<BackfillTask>();
        services.AddSingleton<CreateIndexTrigger>();
        services.AddSingleton<StreamUpdateDatapoint>();
        services.AddSingleton<StreamRemoveDatapoint>();
        services.AddSingleton<DatapointWriteTask>();
        services.AddSingleton<QueryIndex>();
        services.AddSingleton<OnIndexCreated>();
        services.AddSingleton<OnIndexDeployed>();

        AddRoutes(services, options);
        services.AddHostedService<LocalInstallation>();
        return services;
    }

    /// <summary>Which function each local queue delivers to, with the retry policy its Google Cloud twin has.</summary>
    private static void AddRoutes(IServiceCollection services, ExtensionOptions options)
    {
        // The backfill task queue retries a chunk BACKFILL_MAX_ATTEMPTS times, as the deployed queue does.
        var backfill = new TaskQueueSettings(new RetryPolicy(options.BackfillMaxAttempts, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1), 6));
        var tasks = new TaskQueueSettings(new RetryPolicy(RetryPolicy.Unlimited, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5), 8));

        // Event triggers deployed with --retry keep trying for up to 7 days; locally the same, with shorter waits.
        var events = new TaskQueueSettings(new RetryPolicy(RetryPolicy.Unlimited, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5), 8));

        AddTaskRoute<BackfillTrigger>(services, BackfillTriggerQueue, tasks);
        AddTaskRoute<BackfillTask>(services, BackfillCoordinator.BackfillTaskFunction, backfill);
        AddTaskRoute<DatapointWriteTask>(services, IndexGate.DatapointWriteTaskFunction, tasks);
        AddStorageRoute<StreamUpdateDatapoint>(services, LocalEventQueues.StorageFinalized, events);
        AddStorageRoute<StreamRemoveDatapoint>(services, LocalEventQueues.StorageDeleted, events);

        services.AddSingleton(sp =>
        {
            var createIndexTrigger = sp.GetRequiredService<CreateIndexTrigger>();
            return new TaskQueueHandler(
                LocalEventQueues.DocumentUpdated,
                (task, ct) => createIndexTrigger.HandleAsync(SqliteDocumentStore.DecodeChange(task.Payload), ct),
                events);
        });

        // One audit-log queue feeds both audit functions, each taking the method its trigger filters on.
        services.AddSingleton(sp =>
        {
            IAuditLogFunction[] auditFunctions = [sp.GetRequiredService<OnIndexCreated>(), sp.GetRequiredService<OnIndexDeployed>()];
            return new TaskQueueHandler(
                LocalEventQueues.AuditLogWritten,
                async (task, ct) =>
                {
                    var entry = task.Payload.Deserialize<AuditLogEvent>(CoreJson.Options)!;
                    foreach (var function in auditFunctions.Where(f => f.MethodName == entry.MethodName))
                    {
                        await function.HandleAsync(entry, ct);
                    }
                },
                events);
        });
    }

    private static void AddTaskRoute<TFunction>(IServiceCollection services, string queue, TaskQueueSettings settings)
        where TFunction : ITaskFunction =>
        services.AddSingleton(sp =>
        {
            var function = sp.GetRequiredService<TFunction>();
            return new TaskQueueHandler(queue, (task, ct) => function.HandleAsync(new TaskDelivery(task.Payload, task.TaskName, task.RetryCount), ct), settings);
        });

    private static void AddStorageRoute<TFunction>(IServiceCollection services, string queue, TaskQueueSettings settings)
        where TFunction : IStorageFunction =>
        services.AddSingleton(sp =>
        {
            var function = sp.GetRequiredService<TFunction>();
            return new TaskQueueHandler(queue, (task, ct) => function.HandleAsync(task.Payload.Deserialize<StorageObjectEvent>(CoreJson.Options)!, ct), settings);
        });
}

/// <summary>
/// The extension's install step and the storage trigger, locally: on a data folder with no backfill
/// and no index yet, enqueue backfillTrigger once; then watch the images folder.
/// </summary>
internal sealed partial class LocalInstallation(
    CoordinationState state,
    SqliteTaskQueue queue,
    LocalBucketWatcher watcher,
    ILogger<LocalInstallation> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var fresh = await state.ReadBackfillRunAsync(cancellationToken) is null && await state.ReadMetadataAsync(cancellationToken) is null;
        if (fresh)
        {
            // Images already there are the backfill's; the watcher only reports what changes from now on.
            await watcher.BaselineAsync(cancellationToken);
            await queue.EnqueueAsync(LocalStack.BackfillTriggerQueue, JsonSerializer.SerializeToElement(new { }), cancellationToken: cancellationToken);
            LogInstalling(logger);
        }

        await watcher.StartAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "First start on this data folder: backfill enqueued")]
    private static partial void LogInstalling(ILogger logger);
}
