using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using ReverseImageSearch.Core.Embedding;

namespace ReverseImageSearch.Core.Configuration;

/// <summary>A configuration value broke its rule. The message is one line: variable, value, rule.</summary>
public sealed class InvalidConfigurationException(string variable, string? value, string rule)
    : Exception($"Invalid configuration: {variable}={(value is null ? "(unset)" : $"'{value}'")} {rule}")
{
    public string Variable { get; } = variable;
}

/// <summary>
/// Reads the extension's parameters from configuration (environment variables in practice) and checks
/// each against the manifest's rule, stopping at the first that breaks one.
/// </summary>
public static partial class ExtensionOptionsLoader
{
    public static readonly IReadOnlyList<string> Locations =
    [
        "us-central1", "us-east1", "us-east4", "us-west1", "us-west2", "northamerica-northeast1",
        "europe-west1", "europe-west2", "europe-west3", "europe-west6", "asia-east1", "asia-northeast1",
        "asia-northeast3", "asia-south1", "asia-southeast1", "australia-southeast1",
    ];

    public static readonly IReadOnlyList<string> ShardSizes = ["SHARD_SIZE_SMALL", "SHARD_SIZE_MEDIUM", "SHARD_SIZE_LARGE"];

    public static readonly IReadOnlyList<string> ModelPrecisions = ["float32", "int8"];

    public static readonly IReadOnlyList<string> IndexBackends = ["firestore", "vertex"];

    public static readonly IReadOnlyList<string> AlgorithmConfigs = ["treeAhConfig", "bruteForceConfig"];

    public static readonly IReadOnlyList<string> AcceleratorTypes =
    [
        "ACCELERATOR_TYPE_UNSPECIFIED", "NVIDIA_TESLA_K80", "NVIDIA_TESLA_P100", "NVIDIA_TESLA_V100", "NVIDIA_TESLA_P4",
        "NVIDIA_TESLA_T4", "NVIDIA_TESLA_A100", "NVIDIA_A100_80GB", "NVIDIA_L4", "TPU_V2", "TPU_V3", "TPU_V4_POD",
    ];

    public static ExtensionOptions Load(IConfiguration configuration)
    {
        var reader = new Reader(configuration);
        var modelFromHub = reader.Boolean("MODEL_FROM_TF_HUB", false);
        if (modelFromHub)
        {
            throw new InvalidConfigurationException("MODEL_FROM_TF_HUB", "true",
                "is not supported: this port runs ONNX models; convert the TF Hub model with tf2onnx and set MODEL_URL to the .onnx file");
        }

        var inputShape = reader.Matching("INPUT_SHAPE", InputShapeRule(), "must be two whole numbers 'H,W', for example 224,224", "224,224")!;
        var dims = inputShape.Split(',');
        var distance = reader.Required("DISTANCE_MEASURE", "DOT_PRODUCT_DISTANCE");
        if (!DistanceMeasureNames.TryParse(distance, out var measure))
        {
            throw new InvalidConfigurationException("DISTANCE_MEASURE", distance,
                "must be one of SQUARED_L2_DISTANCE, L1_DISTANCE, COSINE_DISTANCE, DOT_PRODUCT_DISTANCE");
        }

        var backend = reader.OneOf("INDEX_BACKEND", IndexBackends, "vertex") == "firestore" ? IndexBackend.Firestore : IndexBackend.Vertex;
        if (backend == IndexBackend.Firestore && measure == DistanceMeasure.L1)
        {
            throw new InvalidConfigurationException("DISTANCE_MEASURE", distance,
                "is not available with INDEX_BACKEND=firestore: Firestore vector search measures EUCLIDEAN, COSINE and DOT_PRODUCT only");
        }

        var modelUrl = reader.Optional("MODEL_URL") is { } url ? CheckModelUrl(url) : null;
        var precision = reader.OneOf("MODEL_PRECISION", ModelPrecisions, "float32") == "int8" ? ModelPrecision.Int8 : ModelPrecision.Float32;
        if (precision == ModelPrecision.Int8 && modelUrl is not null)
        {
            throw new InvalidConfigurationException("MODEL_PRECISION", "int8",
                "chooses between the bundled models, so MODEL_URL must be empty (point MODEL_URL at an int8 model instead)");
        }

        var minReplicas = reader.Integer("MIN_REPLICA_COUNT", 1, min: 1, max: 1000);
        var maxReplicas = reader.Integer("MAX_REPLICA_COUNT", 1, min: 1, max: 1000);
        if (maxReplicas < minReplicas)
        {
            throw new InvalidConfigurationException("MAX_REPLICA_COUNT", maxReplicas.ToString(CultureInfo.InvariantCulture),
                $"must be at least MIN_REPLICA_COUNT ({minReplicas})");
        }

        var enforceAppCheck = reader.Boolean("ENFORCE_APP_CHECK", false);
        var projectNumber = reader.Optional("PROJECT_NUMBER");
        if (projectNumber is not null && !ProjectNumberRule().IsMatch(projectNumber))
        {
            throw new InvalidConfigurationException("PROJECT_NUMBER", projectNumber, "must be the project's number (digits only)");
        }

        if (enforceAppCheck && projectNumber is null)
        {
            throw new InvalidConfigurationException("PROJECT_NUMBER", null,
                "is required with ENFORCE_APP_CHECK=true: App Check tokens name the project by number (deploy.sh sets it)");
        }

        return new ExtensionOptions
        {
            ProjectId = reader.Matching("PROJECT_ID", ProjectIdRule(), "must be a Google Cloud project id (6-30 lower-case letters, digits and hyphens)", null)!,
            InstanceId = reader.Matching("EXT_INSTANCE_ID", InstanceIdRule(), "must be lower-case letters, digits and hyphens, starting with a letter", null)!,
            Location = reader.OneOf("LOCATION", Locations, null),
            ImageBucket = reader.Matching("IMG_BUCKET", BucketRule(), "must be a bucket name: lower-case letters, digits, '_', '.', '-'", null)!,
            ImagePath = reader.Matching("IMG_PATH", ImagePathRule(), "must be a folder path like 'images' or 'a/b' (letters, digits, '_', '-', no leading or trailing '/'), or empty", "") ?? "",
            DoBackfill = reader.Boolean("DO_BACKFILL", true),
            ModelUrl = modelUrl,
            ModelPrecision = precision,
            MatchColor = reader.Boolean("MATCH_COLOR", true),
            InputHeight = CheckDimension(dims[0], inputShape),
            InputWidth = CheckDimension(dims[1], inputShape),
            DistanceMeasure = measure,
            IndexBackend = backend,
            AlgorithmConfig = reader.OneOf("ALGORITHM_CONFIG", AlgorithmConfigs, "bruteForceConfig"),
            NeighborsCount = reader.Integer("N_COUNT", 100, min: 1, max: 100_000),
            BatchSize = reader.Integer("BATCH_SIZE", 32, min: 1, max: 64),
            ShardSize = reader.OneOf("SHARD_SIZE", ShardSizes, "SHARD_SIZE_SMALL"),
            MachineType = reader.Matching("MACHINE_TYPE", MachineTypeRule(), "must be a Compute Engine machine type such as e2-standard-2", "e2-standard-2")!,
            AcceleratorType = reader.OneOf("ACCELERATOR_TYPE", AcceleratorTypes, "ACCELERATOR_TYPE_UNSPECIFIED"),
            AcceleratorCount = reader.Integer("ACCELERATOR_COUNT", 1, min: 1, max: 16),
            MinReplicaCount = minReplicas,
            MaxReplicaCount = maxReplicas,
            PendingWriteRetryDelay = TimeSpan.FromSeconds(reader.Integer("PENDING_WRITE_RETRY_SECONDS", 300, min: 1, max: 86_400)),
            BackfillMaxAttempts = reader.Integer("BACKFILL_MAX_ATTEMPTS", 50, min: 1, max: 1000),
            MaxImagePixels = reader.Integer("MAX_IMAGE_PIXELS", 50_000_000, min: 1, max: int.MaxValue),
            MaxImageBytes = reader.Integer("MAX_IMAGE_BYTES", 32 * 1024 * 1024, min: 1, max: int.MaxValue),
            MaxQueryImages = reader.Integer("MAX_QUERY_IMAGES", 16, min: 1, max: 256),
            EnforceAppCheck = enforceAppCheck,
            ProjectNumber = projectNumber,
        };
    }

    private static string CheckModelUrl(string url)
    {
        if (url.StartsWith("https://", StringComparison.Ordinal) || url.StartsWith("http://", StringComparison.Ordinal))
        {
            return url;
        }

        if (url.Contains("://", StringComparison.Ordinal))
        {
            throw new InvalidConfigurationException("MODEL_URL", url, "must be an https:// URL or a file path of an ONNX model");
        }

        return url;
    }

    private static int CheckDimension(string text, string whole)
    {
        var value = int.Parse(text, CultureInfo.InvariantCulture);
        if (value is < 16 or > 4096)
        {
            throw new InvalidConfigurationException("INPUT_SHAPE", whole, "must have both sides between 16 and 4096");
        }

        return value;
    }

    private sealed class Reader(IConfiguration configuration)
    {
        public string? Optional(string name)
        {
            var value = configuration[name]?.Trim();
            return string.IsNullOrEmpty(value) ? null : value;
        }

        public string Required(string name, string? fallback) =>
            Optional(name) ?? fallback ?? throw new InvalidConfigurationException(name, null, "is required");

        public string? Matching(string name, Regex rule, string ruleText, string? fallback)
        {
            var value = Optional(name);
            if (value is null)
            {
                return fallback ?? throw new InvalidConfigurationException(name, null, "is required");
            }

            return rule.IsMatch(value) ? value : throw new InvalidConfigurationException(name, value, ruleText);
        }

        public string OneOf(string name, IReadOnlyList<string> allowed, string? fallback)
        {
            var value = Required(name, fallback);
            return allowed.Contains(value, StringComparer.Ordinal)
                ? value
                : throw new InvalidConfigurationException(name, value, $"must be one of {string.Join(", ", allowed)}");
        }

        public bool Boolean(string name, bool fallback)
        {
            var value = Optional(name);
            if (value is null)
            {
                return fallback;
            }

            return bool.TryParse(value, out var parsed)
                ? parsed
                : throw new InvalidConfigurationException(name, value, "must be true or false");
        }

        public int Integer(string name, int fallback, int min, int max)
        {
            var value = Optional(name);
            if (value is null)
            {
                return fallback;
            }

            return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) && parsed >= min && parsed <= max
                ? parsed
                : throw new InvalidConfigurationException(name, value, $"must be a whole number from {min} to {max}");
        }
    }

    [GeneratedRegex(@"^[0-9]{1,20}$")]
    private static partial Regex ProjectNumberRule();

    [GeneratedRegex(@"^\d+,\d+$")]
    private static partial Regex InputShapeRule();

    [GeneratedRegex(@"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
    private static partial Regex ProjectIdRule();

    [GeneratedRegex(@"^[a-z][a-z0-9-]{0,62}$")]
    private static partial Regex InstanceIdRule();

    // The manifest's own rule (^([0-9a-z_.-]*)$) plus non-empty: a bucket is required.
    [GeneratedRegex(@"^[0-9a-z_.-]+$")]
    private static partial Regex BucketRule();

    [GeneratedRegex(@"^[\w-]+(\/[\w-]+)*$")]
    private static partial Regex ImagePathRule();

    [GeneratedRegex(@"^[a-z][a-z0-9]*-[a-z0-9-]+$")]
    private static partial Regex MachineTypeRule();
}
