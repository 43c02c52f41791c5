using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using Polly;

namespace ReverseImageSearch.Gcp.Http;

/// <summary>
/// The one HTTP pipeline of the Google adapters: a retry (exponential backoff with jitter, Retry-After honoured)
/// on 408/429/500/502/503/504, connection failures and attempt timeouts, a per-attempt timeout, then the bearer
/// token (only to hosts <see cref="GcpEndpoints.MayReceiveToken"/> allows).
/// Only idempotent calls are retried: reads, named writes (documents, objects, named tasks), upserts and removals
/// of datapoints. A call that creates a new resource on every send (indexes.create, indexEndpoints.create) is
/// marked <see cref="SendOnce"/>: after a 5xx or a timeout it may have been applied, and sending it again could
/// leave a second, billing resource. Its caller looks up what the first send made instead.
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

    /// <summary>Set on a request that must not be sent twice (see the class summary).</summary>
    public static readonly HttpRequestOptionsKey<bool> SendOnce = new("ris.send-once");

    public static bool IsRetried(HttpStatusCode status) => RetriedStatuses.Contains(status);

    /// <summary>Whether the pipeline may send <paramref name="request"/> again after a failed attempt.</summary>
    public static bool MayResend(HttpRequestMessage? request) =>
        request is null || !request.Options.TryGetValue(SendOnce, out var once) || !once;

    /// <summary>Adds the retry and timeout strategies, then (innermost) the bearer token from <paramref name="tokens"/>.</summary>
    public static IHttpClientBuilder AddGooglePipeline(
        this IHttpClientBuilder builder,
        GcpAdapterOptions options,
        GcpEndpoints endpoints,
        Func<IServiceProvider, IAccessTokenSource>? tokens)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(endpoints);
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
                ShouldHandle = args => ValueTask.FromResult(MayResend(args.Context.GetRequestMessage()) && args.Outcome switch
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
            builder.AddHttpMessageHandler(sp => new BearerTokenHandler(tokens(sp), endpoints.MayReceiveToken));
        }

        return builder;
    }
}
