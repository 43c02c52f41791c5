using System.Globalization;
using System.Text.RegularExpressions;

namespace ReverseImageSearch.Core.Configuration;

/// <summary>One parameter: its environment variable, its default (null: none) and its rule.</summary>
public abstract record ExtensionParameter(string Name)
{
    /// <summary>True when the parameter has no default and must be set; false when unset has a meaning.</summary>
    public bool IsRequired { get; init; }

    /// <summary>The default as written in an env file, or null when the parameter has none (required, or empty means "not set").</summary>
    public abstract string? DefaultText { get; }

    /// <summary>The rule as the one line of an <see cref="InvalidConfigurationException"/>.</summary>
    public abstract string Rule { get; }

    public abstract bool Accepts(string value);
}

/// <summary>One of a fixed list of values.</summary>
public sealed record ChoiceParameter(string Name, string? Default, IReadOnlyList<string> Values) : ExtensionParameter(Name)
{
    public override string? DefaultText => Default;

    public override string Rule => $"must be one of {string.Join(", ", Values)}";

    public override bool Accepts(string value) => Values.Contains(value, StringComparer.Ordinal);
}

/// <summary>A whole number written in ASCII digits, from Min to Max.</summary>
public sealed record IntegerParameter(string Name, int Default, int Min, int Max) : ExtensionParameter(Name)
{
    public override string DefaultText => Default.ToString(CultureInfo.InvariantCulture);

    public override string Rule => $"must be a whole number from {Min} to {Max}";

    public override bool Accepts(string value) => Parse(value) is not null;

    public int? Parse(string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) && parsed >= Min && parsed <= Max
            ? parsed
            : null;
}

/// <summary>true or false, in lower case (what extension.yaml's select offers and deploy.sh accepts).</summary>
public sealed record BooleanParameter(string Name, bool Default) : ExtensionParameter(Name)
{
    public override string DefaultText => Default ? "true" : "false";

    public override string Rule => "must be true or false";

    public override bool Accepts(string value) => value is "true" or "false";
}

/// <summary>Two whole numbers "H,W", each side from MinSide to MaxSide.</summary>
public sealed record ShapeParameter(string Name, string Default, int MinSide, int MaxSide) : ExtensionParameter(Name)
{
    public override string DefaultText => Default;

    public override string Rule => $"must be two whole numbers 'H,W' from {MinSide} to {MaxSide}, for example {Default}";

    public override bool Accepts(string value) => Parse(value) is not null;

    public (int Height, int Width)? Parse(string value)
    {
        var sides = value.Split(',');
        return sides.Length == 2 && Side(sides[0]) is { } height && Side(sides[1]) is { } width ? (height, width) : null;
    }

    private int? Side(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var side) && side >= MinSide && side <= MaxSide ? side : null;
}

/// <summary>Text matching a pattern (ASCII classes only, so extension.yaml's JavaScript regex and bash agree).</summary>
public sealed record PatternParameter(string Name, string? Default, Regex Pattern, string RuleText) : ExtensionParameter(Name)
{
    public override string? DefaultText => Default;

    public override string Rule => RuleText;

    public override bool Accepts(string value) => Pattern.IsMatch(value);
}

/// <summary>
/// Every parameter the functions read, with its default and rule, defined here once: ExtensionOptionsLoader checks
/// through these and ExtensionOptions takes its defaults from them; extension.yaml and deploy.sh repeat them for
/// their readers, and ParameterAgreementTests checks that all three accept and reject the same values.
/// Rules that join two parameters (MAX_REPLICA_COUNT at least MIN_REPLICA_COUNT, ...) live in the loader.
/// </summary>
public static partial class ExtensionParameters
{
    public static readonly PatternParameter ProjectId = new("PROJECT_ID", null, ProjectIdRule(),
        "must be a Google Cloud project id (6-30 lower-case letters, digits and hyphens)") { IsRequired = true };

    /// <summary>deploy.sh allows at most 26 characters: its service account ids ext-/exq-{id} allow 30.</summary>
    public static readonly PatternParameter InstanceId = new("EXT_INSTANCE_ID", null, InstanceIdRule(),
        "must be lower-case letters, digits and hyphens, starting with a letter") { IsRequired = true };

    /// <summary>Set by deploy.sh from `gcloud projects describe`; App Check tokens name the project by number.</summary>
    public static readonly PatternParameter ProjectNumber = new("PROJECT_NUMBER", null, ProjectNumberRule(),
        "must be the project's number (digits only)");

    public static readonly ChoiceParameter Location = new("LOCATION", null,
    [
        "us-central1", "us-east1", "us-east4", "us-west1", "us-west2", "northamerica-northeast1",
        "europe-west1", "europe-west2", "europe-west3", "europe-west6", "asia-east1", "asia-northeast1",
        "asia-northeast3", "asia-south1", "asia-southeast1", "australia-southeast1",
    ]) { IsRequired = true };

    // The manifest's own rule (^([0-9a-z_.-]*)$) plus non-empty: a bucket is required.
    public static readonly PatternParameter ImageBucket = new("IMG_BUCKET", null, BucketRule(),
        "must be a bucket name: lower-case letters, digits, '_', '.', '-'") { IsRequired = true };

    /// <summary>Empty (the default) means the whole bucket.</summary>
    public static readonly PatternParameter ImagePath = new("IMG_PATH", null, ImagePathRule(),
        "must be a folder path like 'images' or 'a/b' (letters, digits, '_', '-', no leading or trailing '/'), or empty");

    public static readonly BooleanParameter DoBackfill = new("DO_BACKFILL", true);

    /// <summary>
    /// Empty (the default) means the bundled model. The functions also take a file path or http:// URL (the local
    /// emulator's models); deploy.sh and extension.yaml take https:// URLs only, since Cloud Run downloads it.
    /// </summary>
    public static readonly PatternParameter ModelUrl = new("MODEL_URL", null, ModelUrlRule(),
        "must be an https:// URL or a file path of an ONNX model");

    /// <summary>Kept for the original's configuration; true is refused (this port runs ONNX models).</summary>
    public static readonly BooleanParameter ModelFromTfHub = new("MODEL_FROM_TF_HUB", false);

    public static readonly ShapeParameter InputShape = new("INPUT_SHAPE", "224,224", 16, 4096);

    public static readonly ChoiceParameter DistanceMeasure = new("DISTANCE_MEASURE", "DOT_PRODUCT_DISTANCE",
        ["SQUARED_L2_DISTANCE", "L1_DISTANCE", "COSINE_DISTANCE", "DOT_PRODUCT_DISTANCE"]);

    /// <summary>Unset means vertex, so an installation older than the parameter keeps its Vertex AI index.</summary>
    public static readonly ChoiceParameter IndexBackend = new("INDEX_BACKEND", "vertex", ["firestore", "vertex"]);

    public static readonly ChoiceParameter AlgorithmConfig = new("ALGORITHM_CONFIG", "bruteForceConfig", ["treeAhConfig", "bruteForceConfig"]);

    public static readonly IntegerParameter NeighborsCount = new("N_COUNT", 100, 1, 100_000);

    public static readonly IntegerParameter BatchSize = new("BATCH_SIZE", 32, 1, 64);

    public static readonly ChoiceParameter ShardSize = new("SHARD_SIZE", "SHARD_SIZE_SMALL", ["SHARD_SIZE_SMALL", "SHARD_SIZE_MEDIUM", "SHARD_SIZE_LARGE"]);

    public static readonly ChoiceParameter MachineType = new("MACHINE_TYPE", "e2-standard-2",
    [
        "e2-standard-2", "e2-standard-4", "e2-standard-8", "e2-standard-16", "e2-standard-32",
        "e2-highmem-2", "e2-highmem-4", "e2-highmem-8", "e2-highmem-16",
        "e2-highcpu-2", "e2-highcpu-4", "e2-highcpu-8", "e2-highcpu-16", "e2-highcpu-32",
        "n1-standard-2", "n1-standard-4", "n1-standard-8", "n1-standard-16", "n1-standard-32",
        "n1-highmem-2", "n1-highmem-4", "n1-highmem-8", "n1-highmem-16", "n1-highmem-32",
        "n1-highcpu-4", "n1-highcpu-8", "n1-highcpu-16", "n1-highcpu-32",
        "n2-standard-2", "n2-standard-4", "n2-standard-8", "n2-standard-16", "n2-standard-32", "n2-standard-48",
        "n2-standard-64", "n2-standard-80", "n2-standard-96", "n2-standard-128",
        "n2-highmem-2", "n2-highmem-4", "n2-highmem-8", "n2-highmem-16", "n2-highmem-32", "n2-highmem-48",
        "n2-highmem-64", "n2-highmem-80", "n2-highmem-96", "n2-highmem-128",
        "n2-highcpu-2", "n2-highcpu-4", "n2-highcpu-8", "n2-highcpu-16", "n2-highcpu-32",
        "n2d-standard-2", "n2d-standard-4", "n2d-standard-8", "n2d-standard-16", "n2d-standard-32", "n2d-standard-48",
        "n2d-standard-64", "n2d-standard-80", "n2d-standard-96", "n2d-standard-128",
        "n2d-highmem-2", "n2d-highmem-4", "n2d-highmem-8", "n2d-highmem-16", "n2d-highmem-32", "n2d-highmem-48",
        "n2d-highmem-64", "n2d-highmem-80", "n2d-highmem-96", "n2d-highmem-128",
        "n2d-highcpu-2", "n2d-highcpu-4", "n2d-highcpu-8", "n2d-highcpu-16", "n2d-highcpu-32",
        "a2-highgpu-1g", "a2-highgpu-2g", "a2-highgpu-4g", "a2-highgpu-8g", "a2-megagpu-16g",
        "g2-standard-4", "g2-standard-8", "g2-standard-12", "g2-standard-16",
    ]);

    public static readonly ChoiceParameter AcceleratorType = new("ACCELERATOR_TYPE", "ACCELERATOR_TYPE_UNSPECIFIED",
    [
        "ACCELERATOR_TYPE_UNSPECIFIED", "NVIDIA_TESLA_K80", "NVIDIA_TESLA_P100", "NVIDIA_TESLA_V100", "NVIDIA_TESLA_P4",
        "NVIDIA_TESLA_T4", "NVIDIA_TESLA_A100", "NVIDIA_A100_80GB", "NVIDIA_L4", "TPU_V2", "TPU_V3", "TPU_V4_POD",
    ]);

    public static readonly IntegerParameter AcceleratorCount = new("ACCELERATOR_COUNT", 1, 1, 16);

    public static readonly IntegerParameter MinReplicaCount = new("MIN_REPLICA_COUNT", 1, 1, 1000);

    public static readonly IntegerParameter MaxReplicaCount = new("MAX_REPLICA_COUNT", 1, 1, 1000);

    public static readonly IntegerParameter PendingWriteRetrySeconds = new("PENDING_WRITE_RETRY_SECONDS", 300, 1, 86_400);

    public static readonly IntegerParameter BackfillMaxAttempts = new("BACKFILL_MAX_ATTEMPTS", 50, 1, 1000);

    public static readonly IntegerParameter MaxImagePixels = new("MAX_IMAGE_PIXELS", 50_000_000, 1, int.MaxValue);

    public static readonly IntegerParameter MaxImageBytes = new("MAX_IMAGE_BYTES", 32 * 1024 * 1024, 1, int.MaxValue);

    public static readonly IntegerParameter MaxQueryImages = new("MAX_QUERY_IMAGES", 16, 1, 256);

    public static readonly ChoiceParameter ModelPrecision = new("MODEL_PRECISION", "float32", ["float32", "int8"]);

    public static readonly BooleanParameter EnforceAppCheck = new("ENFORCE_APP_CHECK", false);

    /// <summary>MATCH_COLOR: colour input (true) or luma input (false); belongs to the index (EmbeddingSettings).</summary>
    public static readonly BooleanParameter MatchColor = new("MATCH_COLOR", true);

    /// <summary>MATCH_CROPS: each image is also stored with views of the parts its centre square misses; belongs to the index.</summary>
    public static readonly BooleanParameter MatchCrops = new("MATCH_CROPS", false);

    /// <summary>Every parameter, in the order the loader reads them.</summary>
    public static IReadOnlyList<ExtensionParameter> All { get; } =
    [
        ProjectId, InstanceId, ProjectNumber, Location, ImageBucket, ImagePath, DoBackfill, ModelUrl, ModelFromTfHub,
        InputShape, DistanceMeasure, IndexBackend, AlgorithmConfig, NeighborsCount, BatchSize, ShardSize, MachineType,
        AcceleratorType, AcceleratorCount, MinReplicaCount, MaxReplicaCount, PendingWriteRetrySeconds, BackfillMaxAttempts,
        MaxImagePixels, MaxImageBytes, MaxQueryImages, ModelPrecision, EnforceAppCheck, MatchColor,
        MatchCrops,
    ];

    [GeneratedRegex(@"^[0-9]{1,20}$")]
    private static partial Regex ProjectNumberRule();

    [GeneratedRegex(@"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
    private static partial Regex ProjectIdRule();

    [GeneratedRegex(@"^[a-z][a-z0-9-]{0,62}$")]
    private static partial Regex InstanceIdRule();

    [GeneratedRegex(@"^[0-9a-z_.-]+$")]
    private static partial Regex BucketRule();

    [GeneratedRegex(@"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")]
    private static partial Regex ImagePathRule();

    // An http(s) URL, or a file path (anything without "://").
    [GeneratedRegex(@"^(https?://\S+|(?!.*://).+)$")]
    private static partial Regex ModelUrlRule();
}
