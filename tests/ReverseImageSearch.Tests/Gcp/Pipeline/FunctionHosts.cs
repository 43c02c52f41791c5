using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Embedding;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Gcp.Hosting;

namespace ReverseImageSearch.Tests.Gcp.Pipeline;

/// <summary>
/// The nine function projects, each hosted for real by <see cref="FunctionHost.TryBuild{TFunction}"/> (the code
/// their Program.cs runs), in this process, each on its own loopback port, configured by command-line arguments.
/// </summary>
public sealed class FunctionHosts : IAsyncDisposable
{
    /// <summary>The extension's function names (as in extension.yaml) and how each project builds its host.</summary>
    public static readonly IReadOnlyDictionary<string, Func<string[], TextWriter, WebApplication?>> Functions =
        new Dictionary<string, Func<string[], TextWriter, WebApplication?>>(StringComparer.Ordinal)
        {
            ["backfillTrigger"] = (args, errors) => FunctionHost.TryBuild<BackfillTrigger>(args, errors),
            ["backfillTask"] = (args, errors) => FunctionHost.TryBuild<BackfillTask>(args, errors, Embedder),
            ["createIndexTrigger"] = (args, errors) => FunctionHost.TryBuild<CreateIndexTrigger>(args, errors),
            ["streamUpdateDatapoint"] = (args, errors) => FunctionHost.TryBuild<StreamUpdateDatapoint>(args, errors, Embedder),
            ["streamRemoveDatapoint"] = (args, errors) => FunctionHost.TryBuild<StreamRemoveDatapoint>(args, errors),
            ["datapointWriteTask"] = (args, errors) => FunctionHost.TryBuild<DatapointWriteTask>(args, errors, Embedder),
            ["queryIndex"] = (args, errors) => FunctionHost.TryBuild<QueryIndex>(args, errors, Embedder),
            ["onIndexCreated"] = (args, errors) => FunctionHost.TryBuild<OnIndexCreated>(args, errors),
            ["onIndexDeployed"] = (args, errors) => FunctionHost.TryBuild<OnIndexDeployed>(args, errors),
        };

    private static IServiceCollection Embedder(IServiceCollection services) => services.AddImageEmbedder();

    private readonly Dictionary<string, WebApplication> _apps = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Uri> _urls = new(StringComparer.Ordinal);

    private FunctionHosts()
    {
    }

    /// <summary>
    /// Builds and starts every function with <paramref name="configuration"/> (as --KEY=value arguments) plus
    /// <paramref name="extra"/> for individual functions. FunctionHost listens on 0.0.0.0:$PORT as Cloud Run
    /// requires; here the address is replaced by 127.0.0.1 with a free port before start, so nothing leaves loopback.
    /// </summary>
    public static async Task<FunctionHosts> StartAsync(
        IReadOnlyDictionary<string, string> configuration,
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> extra)
    {
        var hosts = new FunctionHosts();
        try
        {
            foreach (var (name, build) in Functions)
            {
                var settings = new Dictionary<string, string>(configuration, StringComparer.Ordinal);
                if (extra.TryGetValue(name, out var more))
                {
                    foreach (var (k, v) in more)
                    {
                        settings[k] = v;
                    }
                }

                var errors = new StringWriter();
                var app = build(settings.Select(kv => $"--{kv.Key}={kv.Value}").ToArray(), errors)
                    ?? throw new InvalidOperationException($"{name} did not start: {errors}");
                app.Urls.Clear();
                app.Urls.Add("http://127.0.0.1:0");
                hosts._apps[name] = app;
                await app.StartAsync();
                hosts._urls[name] = new Uri(app.Urls.Single());
            }
        }
        catch
        {
            await hosts.DisposeAsync();
            throw;
        }

        return hosts;
    }

    public Uri Url(string function) =>
        _urls.TryGetValue(function, out var url) ? url : throw new KeyNotFoundException($"No function {function} is hosted.");

    public bool TryGetUrl(string function, out Uri url) => _urls.TryGetValue(function, out url!);

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps.Values)
        {
            try
            {
                await app.StopAsync();
            }
            finally
            {
                await app.DisposeAsync();
            }
        }

        _apps.Clear();
    }
}
