using Microsoft.Extensions.Configuration;

namespace ReverseImageSearch.Gcp.Http;

/// <summary>
/// Where the Google REST APIs are. Defaults are the production hosts; tests point them at a local server.
/// </summary>
public sealed class GcpEndpoints
{
    public const string LocationPlaceholder = "{LOCATION}";

    public const string ProjectPlaceholder = "{PROJECT_ID}";

    /// <summary>Firestore REST base including the version, e.g. https://firestore.googleapis.com/v1.</summary>
    public Uri FirestoreBase { get; set; } = new("https://firestore.googleapis.com/v1");

    /// <summary>
    /// FIRESTORE_EMULATOR_HOST (host:port). When set, Firestore calls go to http://{host}/v1 with the token "owner".
    /// </summary>
    public string? FirestoreEmulatorHost { get; set; }

    /// <summary>Cloud Storage JSON API base, e.g. https://storage.googleapis.com/storage/v1.</summary>
    public Uri StorageBase { get; set; } = new("https://storage.googleapis.com/storage/v1");

    /// <summary>Cloud Storage media upload base, e.g. https://storage.googleapis.com/upload/storage/v1.</summary>
    public Uri StorageUploadBase { get; set; } = new("https://storage.googleapis.com/upload/storage/v1");

    /// <summary>Cloud Tasks base including the version, e.g. https://cloudtasks.googleapis.com/v2.</summary>
    public Uri CloudTasksBase { get; set; } = new("https://cloudtasks.googleapis.com/v2");

    /// <summary>Vertex AI base including the version; {LOCATION} is replaced by the region.</summary>
    public string VertexBase { get; set; } = "https://{LOCATION}-aiplatform.googleapis.com/v1";

    /// <summary>
    /// When set, findNeighbors goes to this scheme and authority instead of https://{publicEndpointDomainName}
    /// (tests point it at a local server).
    /// </summary>
    public Uri? PublicEndpointOverride { get; set; }

    /// <summary>Base of the task-queue functions' URLs; {LOCATION} and {PROJECT_ID} are replaced.</summary>
    public string FunctionsBase { get; set; } = "https://{LOCATION}-{PROJECT_ID}.cloudfunctions.net";

    /// <summary>
    /// FUNCTION_URL_TEMPLATE: the URL tasks are sent to, with {FUNCTION} standing for the deployed function's name in
    /// lower case (its Cloud Run service), e.g. https://{FUNCTION}-123456789.us-central1.run.app. deploy.sh sets it:
    /// Cloud Run counts Cloud Tasks deliveries as internal only at the run.app URL. Null = <see cref="FunctionsBase"/>.
    /// </summary>
    public string? FunctionUrlTemplate { get; set; }

    public const string FunctionPlaceholder = "{FUNCTION}";

    /// <summary>FUNCTION_URL_TEMPLATE (see <see cref="FunctionUrlTemplate"/>).</summary>
    public const string FunctionUrlTemplateKey = "FUNCTION_URL_TEMPLATE";

    /// <summary>The metadata server (service account email, tokens).</summary>
    public Uri MetadataServerBase { get; set; } = new("http://metadata.google.internal/computeMetadata/v1");

    /// <summary>Firestore base in effect: the emulator's when <see cref="FirestoreEmulatorHost"/> is set.</summary>
    public Uri EffectiveFirestoreBase =>
        string.IsNullOrWhiteSpace(FirestoreEmulatorHost) ? FirestoreBase : new Uri($"http://{FirestoreEmulatorHost}/v1");

    public bool UsesFirestoreEmulator => !string.IsNullOrWhiteSpace(FirestoreEmulatorHost);

    public Uri VertexBaseFor(string location) => new(VertexBase.Replace(LocationPlaceholder, location, StringComparison.Ordinal));

    public string FunctionsBaseFor(string location, string projectId) =>
        FunctionsBase.Replace(LocationPlaceholder, location, StringComparison.Ordinal)
            .Replace(ProjectPlaceholder, projectId, StringComparison.Ordinal)
            .TrimEnd('/');

    /// <summary>The URL a task for <paramref name="deployedFunctionName"/> is sent to.</summary>
    public string FunctionUrlFor(string location, string projectId, string deployedFunctionName) =>
        FunctionUrlTemplate is { } template
            ? template.Replace(FunctionPlaceholder, deployedFunctionName.ToLowerInvariant(), StringComparison.Ordinal)
            : $"{FunctionsBaseFor(location, projectId)}/{deployedFunctionName}";

    /// <summary>Domain suffix of Vector Search public endpoints (indexEndpoints.get's publicEndpointDomainName).</summary>
    public const string VectorSearchDomainSuffix = ".vdb.vertexai.goog";

    /// <summary>Domain suffix of the Google REST APIs.</summary>
    public const string GoogleApisDomainSuffix = ".googleapis.com";

    /// <summary>
    /// Base URL of a Vector Search public endpoint (https://{domain}/v1, or the override). The domain comes from
    /// the metadata document, so it must be a Vector Search endpoint domain (<see cref="IsVectorSearchDomain"/>)
    /// even when the override redirects the request; anything else throws <see cref="ArgumentException"/>.
    /// </summary>
    public Uri PublicEndpointBaseFor(string publicEndpointDomainName)
    {
        if (!IsVectorSearchDomain(publicEndpointDomainName))
        {
            throw new ArgumentException(
                $"'{publicEndpointDomainName}' is not a Vector Search endpoint domain (*{VectorSearchDomainSuffix}); no request was sent to it.",
                nameof(publicEndpointDomainName));
        }

        return PublicEndpointOverride is { } o
            ? new Uri(o.GetLeftPart(UriPartial.Authority) + "/v1")
            : new Uri($"https://{publicEndpointDomainName}/v1");
    }

    /// <summary>A bare DNS name (letters, digits, '-' and '.' only) under <see cref="VectorSearchDomainSuffix"/>.</summary>
    public static bool IsVectorSearchDomain(string? domain) =>
        !string.IsNullOrEmpty(domain)
        && domain.Length <= 253
        && domain.EndsWith(VectorSearchDomainSuffix, StringComparison.OrdinalIgnoreCase)
        && domain.Length > VectorSearchDomainSuffix.Length
        && domain.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.')
        && !domain.Contains("..", StringComparison.Ordinal)
        && !domain.StartsWith('.');

    /// <summary>
    /// Whether a request to <paramref name="uri"/> may carry the service account's access token: https to a Google
    /// API host (*.googleapis.com) or a Vector Search endpoint (*.vdb.vertexai.goog), or the authority of an endpoint
    /// configured here (the Firestore emulator, the test servers). Never a host named by data.
    /// </summary>
    public bool MayReceiveToken(Uri uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        if (!uri.IsAbsoluteUri)
        {
            return false;
        }

        if (uri.Scheme == Uri.UriSchemeHttps && uri.IsDefaultPort
            && (uri.IdnHost.EndsWith(GoogleApisDomainSuffix, StringComparison.OrdinalIgnoreCase) || IsVectorSearchDomain(uri.IdnHost)))
        {
            return true;
        }

        return ConfiguredAuthorities().Contains(uri.GetLeftPart(UriPartial.Authority), StringComparer.OrdinalIgnoreCase);
    }

    private IEnumerable<string> ConfiguredAuthorities()
    {
        Uri?[] configured = [FirestoreBase, EffectiveFirestoreBase, StorageBase, StorageUploadBase, CloudTasksBase, PublicEndpointOverride,
            Uri.TryCreate(VertexBase, UriKind.Absolute, out var vertex) ? vertex : null];
        return configured.OfType<Uri>().Select(u => u.GetLeftPart(UriPartial.Authority));
    }

    /// <summary>FIRESTORE_EMULATOR_HOST: host:port of a Firestore emulator (Google's client libraries read the same variable).</summary>
    public const string FirestoreEmulatorHostKey = "FIRESTORE_EMULATOR_HOST";

    /// <summary>STORAGE_EMULATOR_HOST: a Cloud Storage emulator, as http://host:port or host:port (Google's client libraries read it too).</summary>
    public const string StorageEmulatorHostKey = "STORAGE_EMULATOR_HOST";

    /// <summary>GCE_METADATA_HOST: host:port of the metadata server (the variable Google's auth libraries read).</summary>
    public const string MetadataHostKey = "GCE_METADATA_HOST";

    /// <summary>Test override: Cloud Tasks base including the version, e.g. http://127.0.0.1:9000/v2.</summary>
    public const string CloudTasksBaseKey = "RIS_TEST_CLOUD_TASKS_BASE";

    /// <summary>Test override: Vertex AI base including the version ({LOCATION} allowed), e.g. http://127.0.0.1:9000/v1.</summary>
    public const string VertexBaseKey = "RIS_TEST_VERTEX_BASE";

    /// <summary>Test override: scheme and authority that receive findNeighbors instead of https://{publicEndpointDomainName}.</summary>
    public const string VectorSearchQueryBaseKey = "RIS_TEST_VECTOR_SEARCH_QUERY_BASE";

    /// <summary>Test override: base of the task-queue functions' URLs ({LOCATION} and {PROJECT_ID} allowed).</summary>
    public const string FunctionsBaseKey = "RIS_TEST_FUNCTIONS_BASE";

    /// <summary>
    /// Test override: a fixed OAuth2 access token sent to every Google API instead of Application Default
    /// Credentials. Honoured only while an API base override above (Storage, Cloud Tasks, Vertex AI or the
    /// findNeighbors host) is set, so a deployed function never sends a fixed token to Google.
    /// </summary>
    public const string AccessTokenKey = "RIS_TEST_ACCESS_TOKEN";

    /// <summary>The fixed access token in effect (see <see cref="AccessTokenKey"/>); null = Application Default Credentials.</summary>
    public string? FixedAccessToken { get; set; }

    /// <summary>Defaults, with the overrides above taken from the environment variables.</summary>
    public static GcpEndpoints FromEnvironment() =>
        FromConfiguration(new ConfigurationBuilder().AddEnvironmentVariables().Build());

    /// <summary>
    /// Defaults (the production hosts), with the emulator and test overrides above taken from <paramref name="configuration"/>
    /// (a function host's configuration: environment variables and command-line arguments). Unset keys keep the defaults.
    /// </summary>
    public static GcpEndpoints FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var endpoints = new GcpEndpoints { FirestoreEmulatorHost = Value(configuration, FirestoreEmulatorHostKey) };
        var apiOverridden = false;
        if (Value(configuration, StorageEmulatorHostKey) is { } storage)
        {
            var root = WithScheme(storage).TrimEnd('/');
            endpoints.StorageBase = new Uri(root + "/storage/v1");
            endpoints.StorageUploadBase = new Uri(root + "/upload/storage/v1");
            apiOverridden = true;
        }

        if (Value(configuration, CloudTasksBaseKey) is { } tasks)
        {
            endpoints.CloudTasksBase = new Uri(tasks);
            apiOverridden = true;
        }

        if (Value(configuration, VertexBaseKey) is { } vertex)
        {
            endpoints.VertexBase = vertex;
            apiOverridden = true;
        }

        if (Value(configuration, VectorSearchQueryBaseKey) is { } query)
        {
            endpoints.PublicEndpointOverride = new Uri(query);
            apiOverridden = true;
        }

        if (Value(configuration, FunctionsBaseKey) is { } functions)
        {
            endpoints.FunctionsBase = functions;
        }

        endpoints.FunctionUrlTemplate = Value(configuration, FunctionUrlTemplateKey);

        if (Value(configuration, MetadataHostKey) is { } metadata)
        {
            endpoints.MetadataServerBase = new Uri(WithScheme(metadata).TrimEnd('/') + "/computeMetadata/v1");
        }

        endpoints.FixedAccessToken = apiOverridden ? Value(configuration, AccessTokenKey) : null;
        return endpoints;
    }

    private static string? Value(IConfiguration configuration, string key) =>
        configuration[key] is { } value && !string.IsNullOrWhiteSpace(value) ? value.Trim() : null;

    private static string WithScheme(string hostOrUrl) =>
        hostOrUrl.Contains("://", StringComparison.Ordinal) ? hostOrUrl : "http://" + hostOrUrl;
}

/// <summary>Tuning of the Google adapters: retries, batch sizes, thresholds.</summary>
public sealed class GcpAdapterOptions
{
    /// <summary>Retries of a transient failure (408, 429, 500, 502, 503, 504, connection errors).</summary>
    public int MaxRetries { get; set; } = 5;

    /// <summary>First retry delay; doubles each attempt, with jitter. Retry-After wins when given.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest single wait between retries, Retry-After included.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Timeout of one HTTP attempt.</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Runs of a Firestore transaction body before contention (409 ABORTED) is given up.</summary>
    public int TransactionMaxAttempts { get; set; } = 10;

    /// <summary>First delay before re-running an aborted transaction; doubles with jitter.</summary>
    public TimeSpan TransactionBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Uploads larger than this use a resumable session instead of one media request.</summary>
    public int ResumableUploadThreshold { get; set; } = 8 * 1024 * 1024;

    /// <summary>Datapoints per upsertDatapoints request.</summary>
    public int UpsertBatchSize { get; set; } = 100;

    /// <summary>SERVICE_ACCOUNT_EMAIL: the identity Cloud Tasks signs task requests as; null = ask the metadata server.</summary>
    public string? ServiceAccountEmail { get; set; }

    /// <summary>Cloud Tasks dispatchDeadline of enqueued tasks (15 s to 30 min); null = the service default (10 min).</summary>
    public TimeSpan? TaskDispatchDeadline { get; set; }

    /// <summary>Objects per list page (Cloud Storage caps it at 1000).</summary>
    public int ListPageSize { get; set; } = 1000;

    public static GcpAdapterOptions FromEnvironment() =>
        FromConfiguration(new ConfigurationBuilder().AddEnvironmentVariables().Build());

    /// <summary>Defaults, with SERVICE_ACCOUNT_EMAIL from <paramref name="configuration"/>.</summary>
    public static GcpAdapterOptions FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return new GcpAdapterOptions
        {
            ServiceAccountEmail = configuration["SERVICE_ACCOUNT_EMAIL"] is { Length: > 0 } e ? e : null,
        };
    }
}
