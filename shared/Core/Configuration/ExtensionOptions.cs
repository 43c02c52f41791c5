
namespace ReverseImageSearch.Core.Configuration;

/// <summary>
/// The extension's parameters (the original's names are the environment variables), typed and
/// validated. Built by <see cref="ExtensionOptionsLoader"/>; every property is already valid.
/// </summary>
public sealed class ExtensionOptions
{
    public required string ProjectId { get; init; }

    public required string InstanceId { get; init; }

    /// <summary>LOCATION: region of the functions and of Vertex AI.</summary>
    public required string Location { get; init; }

    /// <summary>IMG_BUCKET.</summary>
    public required string ImageBucket { get; init; }

    /// <summary>IMG_PATH: folder inside the bucket, without slashes at either end; empty for the whole bucket.</summary>
    public string ImagePath { get; init; } = "";

    public bool DoBackfill { get; init; } = ExtensionParameters.DoBackfill.Default;

    /// <summary>MODEL_URL: an ONNX model as a file path or https URL; null for the bundled MobileNetV2.</summary>
    public string? ModelUrl { get; init; }

    /// <summary>MODEL_PRECISION: float32 or int8, which bundled model embeds when MODEL_URL is empty.</summary>
    public ModelPrecision ModelPrecision { get; init; } = ModelPrecision.Float32;

    /// <summary>
    /// MATCH_COLOR: true (default) feeds the model the image in colour, so colours matter ("similar products": a red
    /// dress finds red dresses); false feeds it the image's luma, so grayscale and recoloured copies find their
    /// original (copy detection). Power normalisation is applied either way. The vectors of an index are made with one
    /// setting: <see cref="Coordination.EmbeddingSettings"/> records it, and a query against vectors made with the other is refused.
    /// </summary>
    public bool MatchColor { get; init; } = ExtensionParameters.MatchColor.Default;

    /// <summary>
    /// MATCH_CROPS: false (default) stores one vector per image, of its upright centre square; true also stores
    /// vectors of views of the parts that square misses or shows small (<see cref="Coordination.ImageViews"/>), so a
    /// cropped copy finds its original. An image answers once, with the best distance of its vectors.
    /// </summary>
    public bool MatchCrops { get; init; } = ExtensionParameters.MatchCrops.Default;

    public int InputHeight { get; init; } = 224;

    public int InputWidth { get; init; } = 224;

    public DistanceMeasure DistanceMeasure { get; init; } = ParameterValues.ParseDistanceMeasure(ExtensionParameters.DistanceMeasure.Default!);

    /// <summary>
    /// INDEX_BACKEND: which engine holds the vectors. Unset means vertex, so an installation made before the
    /// parameter existed keeps its Vertex AI index; extension.yaml and deploy/sample.env choose firestore for new ones.
    /// </summary>
    public IndexBackend IndexBackend { get; init; } = IndexBackend.Vertex;

    /// <summary>
    /// True for Vertex AI: vectors go to datapoint files until an index is built from them and deployed to an
    /// endpoint. False for Firestore: every vector is written to its document at once and searchable from then on;
    /// the vector index is a schema object created once, with no endpoint and no deployment.
    /// </summary>
    public bool IndexNeedsBuild => IndexBackend == IndexBackend.Vertex;

    /// <summary>ALGORITHM_CONFIG (treeAhConfig or bruteForceConfig).</summary>
    public IndexAlgorithm Algorithm { get; init; } = ParameterValues.ParseAlgorithm(ExtensionParameters.AlgorithmConfig.Default!);

    /// <summary>N_COUNT: approximate neighbours count of the index.</summary>
    public int NeighborsCount { get; init; } = ExtensionParameters.NeighborsCount.Default;

    /// <summary>BATCH_SIZE: images per backfill task, 1 to 64.</summary>
    public int BatchSize { get; init; } = ExtensionParameters.BatchSize.Default;

    /// <summary>SHARD_SIZE.</summary>
    public IndexShardSize ShardSize { get; init; } = ParameterValues.ParseShardSize(ExtensionParameters.ShardSize.Default!);

    public string MachineType { get; init; } = ExtensionParameters.MachineType.Default!;

    public string AcceleratorType { get; init; } = ExtensionParameters.AcceleratorType.Default!;

    public int AcceleratorCount { get; init; } = ExtensionParameters.AcceleratorCount.Default;

    public int MinReplicaCount { get; init; } = ExtensionParameters.MinReplicaCount.Default;

    public int MaxReplicaCount { get; init; } = ExtensionParameters.MaxReplicaCount.Default;

    /// <summary>How long a datapoint write waits before looking again when the index is not deployed yet.</summary>
    public TimeSpan PendingWriteRetryDelay { get; init; } = TimeSpan.FromSeconds(ExtensionParameters.PendingWriteRetrySeconds.Default);

    /// <summary>Attempts of one backfill chunk before it is recorded as FAILED so the rest can finish (the queue's maxAttempts).</summary>
    public int BackfillMaxAttempts { get; init; } = ExtensionParameters.BackfillMaxAttempts.Default;

    /// <summary>Largest image accepted, in pixels (width x height as the header states), checked before decoding.</summary>
    public long MaxImagePixels { get; init; } = ExtensionParameters.MaxImagePixels.Default;

    /// <summary>Largest stored object or query image accepted, in bytes.</summary>
    public long MaxImageBytes { get; init; } = ExtensionParameters.MaxImageBytes.Default;

    /// <summary>Most images one queryIndex call may carry.</summary>
    public int MaxQueryImages { get; init; } = ExtensionParameters.MaxQueryImages.Default;

    /// <summary>
    /// ENFORCE_APP_CHECK: queryIndex answers unauthenticated unless the call carries a valid Firebase App Check token
    /// (firebase-functions' enforceAppCheck). Default false.
    /// </summary>
    public bool EnforceAppCheck { get; init; } = ExtensionParameters.EnforceAppCheck.Default;

    /// <summary>PROJECT_NUMBER (deploy.sh sets it): App Check tokens name the project by number. Required with EnforceAppCheck.</summary>
    public string? ProjectNumber { get; init; }

    /// <summary>Embeddings bucket: {PROJECT_ID}-ext-{EXT_INSTANCE_ID}.</summary>
    public string EmbeddingsBucket => $"{ProjectId}-ext-{InstanceId}";

    /// <summary>gs:// folder of the datapoint files the index is built from.</summary>
    public string DatapointsUri => $"gs://{EmbeddingsBucket}/{DatapointsFolder}";

    public const string DatapointsFolder = "datapoints";

    /// <summary>Cosine distance compares directions only: the index scales vectors and queries to length 1.</summary>
    public bool NormalizeToUnitLength => DistanceMeasure == DistanceMeasure.Cosine;

    /// <summary>Deployed index id: ext_{instance id with '-' replaced by '_'}_index.</summary>
    public string DeployedIndexId => $"ext_{InstanceId.Replace('-', '_')}_index";

    /// <summary>Name of a function of this instance as deployed: ext-{instance}-{function}.</summary>
    public string DeployedFunctionName(string functionName) => $"ext-{InstanceId}-{functionName}";
}

/// <summary>The two production engines behind <see cref="Ports.IVectorIndexService"/>.</summary>
public enum IndexBackend
{
    /// <summary>Firestore vector search (flat index, exact K nearest neighbours, billed per query).</summary>
    Firestore,

    /// <summary>Vertex AI Vector Search (index built from files, deployed to an endpoint billed per node hour).</summary>
    Vertex,
}

public enum DistanceMeasure
{
    SquaredL2,
    L1,
    Cosine,
    DotProduct,
}

/// <summary>The index's search algorithm (ALGORITHM_CONFIG).</summary>
public enum IndexAlgorithm
{
    /// <summary>Exact search over every vector.</summary>
    BruteForce,

    /// <summary>Vertex AI's tree-AH: approximate, quantised and rescored (locally: the int8 search).</summary>
    TreeAh,
}

/// <summary>The size of each shard of a Vertex AI index (SHARD_SIZE), which sets the machine types it can be deployed to.</summary>
public enum IndexShardSize
{
    Small,
    Medium,
    Large,
}

/// <summary>
/// The typed values as the extension's parameters spell them (DISTANCE_MEASURE, ALGORITHM_CONFIG, SHARD_SIZE: the
/// original's values). Configuration text only: what an API is sent is spelled by its adapter.
/// </summary>
public static class ParameterValues
{
    public static string ToParameterValue(this DistanceMeasure measure) => measure switch
    {
        DistanceMeasure.SquaredL2 => "SQUARED_L2_DISTANCE",
        DistanceMeasure.L1 => "L1_DISTANCE",
        DistanceMeasure.Cosine => "COSINE_DISTANCE",
        DistanceMeasure.DotProduct => "DOT_PRODUCT_DISTANCE",
        _ => throw new ArgumentOutOfRangeException(nameof(measure), measure, null),
    };

    public static string ToParameterValue(this IndexAlgorithm algorithm) => algorithm switch
    {
        IndexAlgorithm.BruteForce => "bruteForceConfig",
        IndexAlgorithm.TreeAh => "treeAhConfig",
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, null),
    };

    public static string ToParameterValue(this IndexShardSize size) => size switch
    {
        IndexShardSize.Small => "SHARD_SIZE_SMALL",
        IndexShardSize.Medium => "SHARD_SIZE_MEDIUM",
        IndexShardSize.Large => "SHARD_SIZE_LARGE",
        _ => throw new ArgumentOutOfRangeException(nameof(size), size, null),
    };

    public static bool TryParse(string value, out DistanceMeasure measure) => TryParse(value, ToParameterValue, out measure);

    public static bool TryParse(string value, out IndexAlgorithm algorithm) => TryParse(value, ToParameterValue, out algorithm);

    public static bool TryParse(string value, out IndexShardSize size) => TryParse(value, ToParameterValue, out size);

    /// <summary>A value the parameter's choices allow (the loader has checked it), typed.</summary>
    public static DistanceMeasure ParseDistanceMeasure(string value) =>
        TryParse(value, out DistanceMeasure parsed) ? parsed : throw NotAValue<DistanceMeasure>(value);

    /// <inheritdoc cref="ParseDistanceMeasure"/>
    public static IndexAlgorithm ParseAlgorithm(string value) =>
        TryParse(value, out IndexAlgorithm parsed) ? parsed : throw NotAValue<IndexAlgorithm>(value);

    /// <inheritdoc cref="ParseDistanceMeasure"/>
    public static IndexShardSize ParseShardSize(string value) =>
        TryParse(value, out IndexShardSize parsed) ? parsed : throw NotAValue<IndexShardSize>(value);

    private static ArgumentException NotAValue<T>(string value) => new($"'{value}' is not a {typeof(T).Name} parameter value.", nameof(value));

    private static bool TryParse<T>(string value, Func<T, string> spell, out T parsed)
        where T : struct, Enum
    {
        foreach (var candidate in Enum.GetValues<T>())
        {
            if (spell(candidate) == value)
            {
                parsed = candidate;
                return true;
            }
        }

        parsed = default;
        return false;
    }
}
