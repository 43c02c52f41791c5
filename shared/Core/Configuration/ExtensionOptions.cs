
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
    public bool MatchColor { get; init; } = true;

    public int InputHeight { get; init; } = 224;

    public int InputWidth { get; init; } = 224;

    public DistanceMeasure DistanceMeasure { get; init; } = DistanceMeasure.DotProduct;

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

    /// <summary>ALGORITHM_CONFIG: treeAhConfig or bruteForceConfig.</summary>
    public string AlgorithmConfig { get; init; } = ExtensionParameters.AlgorithmConfig.Default!;

    /// <summary>N_COUNT: approximate neighbours count of the index.</summary>
    public int NeighborsCount { get; init; } = ExtensionParameters.NeighborsCount.Default;

    /// <summary>BATCH_SIZE: images per backfill task, 1 to 64.</summary>
    public int BatchSize { get; init; } = ExtensionParameters.BatchSize.Default;

    public string ShardSize { get; init; } = ExtensionParameters.ShardSize.Default!;

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

    public string FeatureNormType => DistanceMeasure == DistanceMeasure.Cosine ? "UNIT_L2_NORM" : "NONE";

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

public static class DistanceMeasureNames
{
    public static string ToWireName(this DistanceMeasure measure) => measure switch
    {
        DistanceMeasure.SquaredL2 => "SQUARED_L2_DISTANCE",
        DistanceMeasure.L1 => "L1_DISTANCE",
        DistanceMeasure.Cosine => "COSINE_DISTANCE",
        DistanceMeasure.DotProduct => "DOT_PRODUCT_DISTANCE",
        _ => throw new ArgumentOutOfRangeException(nameof(measure), measure, null),
    };

    public static bool TryParse(string value, out DistanceMeasure measure)
    {
        foreach (var candidate in Enum.GetValues<DistanceMeasure>())
        {
            if (candidate.ToWireName() == value)
            {
                measure = candidate;
                return true;
            }
        }

        measure = default;
        return false;
    }
}
