using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Local.Database;

namespace ReverseImageSearch.Tests.Local.Tasks;

/// <summary>What a local stack's task queue holds, read straight from its database (the product never lists payloads).</summary>
internal static class QueuedPayloads
{
    /// <summary>The payloads of <paramref name="queue"/>'s tasks still waiting or running, oldest first.</summary>
    public static Task<IReadOnlyList<JsonElement>> ReadAsync(IServiceProvider services, string queue) =>
        services.GetRequiredService<LocalDatabase>().ReadAsync<IReadOnlyList<JsonElement>>(connection =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT payload FROM tasks WHERE state <> 'dead' AND queue = $queue ORDER BY id";
            command.Parameters.AddWithValue("$queue", queue);
            var payloads = new List<JsonElement>();
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                using var payload = JsonDocument.Parse(reader.GetString(0));
                payloads.Add(payload.RootElement.Clone());
            }

            return payloads;
        }, CancellationToken.None);
}
