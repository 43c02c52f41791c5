using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Gcp.Auth;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>Runs one function as a Cloud Run service listening on $PORT.</summary>
public static class FunctionHost
{
    public const string PortKey = "PORT";
    public const int DefaultPort = 8080;

    /// <summary>
    /// Hosts <typeparamref name="TFunction"/> with the Google Cloud adapters; returns the exit code.
    /// <paramref name="addServices"/> adds what only this function needs (the functions that embed: the image embedder).
    /// </summary>
    public static async Task<int> RunAsync<TFunction>(string[] args, Func<IServiceCollection, IServiceCollection>? addServices = null)
        where TFunction : class
    {
        var app = TryBuild<TFunction>(args, Console.Error, addServices);
        if (app is null)
        {
            return 1;
        }

        await using (app)
        {
            await app.RunAsync();
        }

        return 0;
    }

    /// <summary>
    /// Builds the service: validated options from configuration (environment variables, then <paramref name="args"/>),
    /// Core and the Google adapters (endpoint overrides from the same configuration: <see cref="Http.GcpEndpoints.FromConfiguration"/>), the Firebase caller authenticator, the health check at <see cref="FunctionHealth.Path"/> and <typeparamref name="TFunction"/> at every other path.
    /// <paramref name="addServices"/> adds what only this function needs (the functions that embed: the image embedder).
    /// Returns null after writing the one-line configuration error to <paramref name="errorOutput"/>.
    /// </summary>
    public static WebApplication? TryBuild<TFunction>(string[] args, TextWriter errorOutput, Func<IServiceCollection, IServiceCollection>? addServices = null)
        where TFunction : class
    {
        ArgumentNullException.ThrowIfNull(errorOutput);
        var builder = WebApplication.CreateBuilder(args);
        ExtensionOptions options;
        int port;
        try
        {
            options = ExtensionOptionsLoader.Load(builder.Configuration);
            port = ReadPort(builder.Configuration[PortKey]);
        }
        catch (InvalidConfigurationException e)
        {
            errorOutput.WriteLine(e.Message);
            return null;
        }

        builder.Logging.AddFunctionConsoleLogging(builder.Configuration);
        builder.WebHost.UseUrls(string.Create(CultureInfo.InvariantCulture, $"http://0.0.0.0:{port}"));
        builder.Services
            .AddReverseImageSearchCore(options)
            .AddGcpAdapters(options, builder.Configuration)
            .AddFirebaseCallerAuthentication(builder.Configuration, options.ProjectId)
            .AddAppCheckEnforcement(builder.Configuration, options.EnforceAppCheck, options.ProjectNumber)
            .AddFunctionHealth()
            .AddFunctionTelemetry(builder.Configuration)
            .AddSingleton<TFunction>();
        addServices?.Invoke(builder.Services);

        var app = builder.Build();
        app.UseCloudTraceLogging(options.ProjectId);
        app.MapFunctionHealth();
        app.MapFunction(FunctionEndpointRouteBuilderExtensions.AnyPath, app.Services.GetRequiredService<TFunction>());
        return app;
    }

    private static int ReadPort(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return DefaultPort;
        }

        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port <= 65535
            ? port
            : throw new InvalidConfigurationException(PortKey, value, "must be a TCP port number from 0 to 65535");
    }
}
