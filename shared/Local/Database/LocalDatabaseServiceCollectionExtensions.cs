using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Local.Documents;
using ReverseImageSearch.Local.Tasks;

namespace ReverseImageSearch.Local.Database;

public static class LocalDatabaseServiceCollectionExtensions
{
    /// <summary>
    /// Registers one local database file with the document store and task queue over it (as
    /// <see cref="IDocumentStore"/> and <see cref="ITaskQueue"/>), a <see cref="TaskQueueDispatcher"/>
    /// hosted service that delivers to every registered <see cref="TaskQueueHandler"/>.
    /// <paramref name="readOnly"/> opens an existing file for reading only (<see cref="LocalDatabase"/>); a host
    /// reports the file's health with <see cref="LocalDatabaseHealthCheck"/>.
    /// Uses the registered <see cref="TimeProvider"/> and, when registered, <see cref="TaskQueueDispatcherOptions"/>
    /// and <see cref="SqliteTaskQueueOptions"/>.
    /// </summary>
    public static IServiceCollection AddLocalDocumentsAndTasks(this IServiceCollection services, string databasePath, IEnumerable<string> watchedDocumentPaths, bool readOnly = false)
    {
        var watched = watchedDocumentPaths.ToArray();
        services.AddSingleton(provider => new LocalDatabase(databasePath, provider.GetRequiredService<ILogger<LocalDatabase>>(), readOnly));
        services.AddSingleton(provider => new SqliteTaskQueue(
            provider.GetRequiredService<LocalDatabase>(), Clock(provider), provider.GetService<SqliteTaskQueueOptions>()));
        services.AddSingleton<ITaskQueue>(provider => provider.GetRequiredService<SqliteTaskQueue>());
        services.AddSingleton(provider => new SqliteDocumentStore(
            provider.GetRequiredService<LocalDatabase>(), provider.GetRequiredService<SqliteTaskQueue>(), watched, Clock(provider)));
        services.AddSingleton<IDocumentStore>(provider => provider.GetRequiredService<SqliteDocumentStore>());
        services.AddSingleton(provider => new TaskQueueDispatcher(
            provider.GetRequiredService<SqliteTaskQueue>(),
            provider.GetServices<TaskQueueHandler>(),
            Clock(provider),
            provider.GetRequiredService<ILogger<TaskQueueDispatcher>>(),
            provider.GetService<TaskQueueDispatcherOptions>()));
        services.AddHostedService(provider => provider.GetRequiredService<TaskQueueDispatcher>());
        return services;
    }

    private static TimeProvider Clock(IServiceProvider provider) => provider.GetService<TimeProvider>() ?? TimeProvider.System;
}
