using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using Polly;

namespace ReverseImageSearch.Gcp.Http;

/// <summary>
/// The one HTTP pipeline of the Google adapters: a retry (exponential backoff with jitter, Retry-After honoured)
/// on 408/429/500/502/503/504 and connection failures, a per-attempt timeout, then the bearer token.
/// </summary>
public static class GcpHttpPipeline
{
    /// <summary>Client for every Google API except Firestore.</summary>
    public const string GoogleClient = "gcp";

    /// <summary>Client for Firestore (the emulator wants the token "owner").</summary>
    public const string FirestoreClient = "gcp-firestore";

    /// <summary>Client for the metadata server (no bearer token).</summary>
    public const string MetadataClient = "gcp-metadata";

    private static readonly HashSet<HttpStatusCode> RetriedStatuses =
    [
        HttpStatusCode.RequestTimeout,
        HttpStatusCode.TooManyRequests,
        HttpStatusCode.InternalServerError,
        HttpStatusCode.BadGateway,
        HttpStatusCode.ServiceUnavailable,
        HttpStatusCode.GatewayTimeout,
    ];

    public static bool IsRetried(HttpStatusCode status) => RetriedStatuses.Contains(status);

    /// <summary>Adds the retry and timeout strategies, then (innermost) the bearer token from <paramref name="tokens"/>.</summary>
    public static IHttpClientBuilder AddGooglePipeline(
        this IHttpClientBuilder builder,
        GcpAdapterOptions options,
        Func<IServiceProvider, IAccessTokenSource>? tokens)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        builder.AddResilienceHandler("google-retry", pipeline =>
        {
            pipeline.AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                MaxDelay = options.RetryMaxDelay,
                ShouldRetryAfterHeader = true,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome switch
                {
                    { Exception: HttpRequestException } => true,
                    { Exception: TimeoutException } => true,
                    { Exception: Polly.Timeout.TimeoutRejectedException } => true,
                    { Result: { } response } => IsRetried(response.StatusCode),
                    _ => false,
                }),
            });
            pipeline.AddTimeout(options.AttemptTimeout);
        });
        if (tokens is not null)
        {
            builder.AddHttpMessageHandler(sp => new BearerTokenHandler(tokens(sp)));
        }

        return builder;
    }
}
