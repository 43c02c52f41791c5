using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace ReverseImageSearch.Core.Configuration;

/// <summary>A configuration value broke its rule. The message is one line: variable, value, rule.</summary>
public sealed class InvalidConfigurationException(string variable, string? value, string rule)
    : Exception($"Invalid configuration: {variable}={(value is null ? "(unset)" : $"'{value}'")} {rule}")
{
    public string Variable { get; } = variable;
}

/// <summary>
/// Reads the extension's parameters from configuration (environment variables in practice) and checks
/// each against its rule in <see cref="ExtensionParameters"/>, stopping at the first that breaks one.
/// </summary>
public static class ExtensionOptionsLoader
{
    public static ExtensionOptions Load(IConfiguration configuration)
    {
        var reader = new Reader(configuration);
        if (reader.Boolean(ExtensionParameters.ModelFromTfHub))
        {
            throw new InvalidConfigurationException(ExtensionParameters.ModelFromTfHub.Name, "true",
                "is not supported: this port runs ONNX models; convert the TF Hub model with tf2onnx and set MODEL_URL to the .onnx file");
        }

        var (inputHeight, inputWidth) = ExtensionParameters.InputShape.Parse(reader.Value(ExtensionParameters.InputShape)!)!.Value;
        var distance = reader.Filled(ExtensionParameters.DistanceMeasure);
        var measure = ParameterValues.ParseDistanceMeasure(distance);

        var backend = reader.Filled(ExtensionParameters.IndexBackend) == "firestore" ? IndexBackend.Firestore : IndexBackend.Vertex;
        if (backend == IndexBackend.Firestore && measure == DistanceMeasure.L1)
        {
            throw new InvalidConfigurationException(ExtensionParameters.DistanceMeasure.Name, distance,
                "is not available with INDEX_BACKEND=firestore: Firestore vector search measures EUCLIDEAN, COSINE and DOT_PRODUCT only");
        }

        var modelUrl = reader.Value(ExtensionParameters.ModelUrl);
        var precision = reader.Filled(ExtensionParameters.ModelPrecision) == "int8" ? ModelPrecision.Int8 : ModelPrecision.Float32;
        if (precision == ModelPrecision.Int8 && modelUrl is not null)
        {
            throw new InvalidConfigurationException(ExtensionParameters.ModelPrecision.Name, "int8",
                "chooses between the bundled models, so MODEL_URL must be empty (point MODEL_URL at an int8 model instead)");
        }

        var minReplicas = reader.Integer(ExtensionParameters.MinReplicaCount);
        var maxReplicas = reader.Integer(ExtensionParameters.MaxReplicaCount);
        if (maxReplicas < minReplicas)
        {
            throw new InvalidConfigurationException(ExtensionParameters.MaxReplicaCount.Name, maxReplicas.ToString(CultureInfo.InvariantCulture),
                $"must be at least MIN_REPLICA_COUNT ({minReplicas})");
        }

        var enforceAppCheck = reader.Boolean(ExtensionParameters.EnforceAppCheck);
        var projectNumber = reader.Value(ExtensionParameters.ProjectNumber);
        if (enforceAppCheck && projectNumber is null)
        {
            throw new InvalidConfigurationException(ExtensionParameters.ProjectNumber.Name, null,
                "is required with ENFORCE_APP_CHECK=true: App Check tokens name the project by number (deploy.sh sets it)");
        }

        return new ExtensionOptions
        {
            ProjectId = reader.Filled(ExtensionParameters.ProjectId),
            InstanceId = reader.Filled(ExtensionParameters.InstanceId),
            Location = reader.Filled(ExtensionParameters.Location),
            ImageBucket = reader.Filled(ExtensionParameters.ImageBucket),
            ImagePath = reader.Value(ExtensionParameters.ImagePath) ?? "",
            DoBackfill = reader.Boolean(ExtensionParameters.DoBackfill),
            ModelUrl = modelUrl,
            ModelPrecision = precision,
            MatchColor = reader.Boolean(ExtensionParameters.MatchColor),
            MatchCrops = reader.Boolean(ExtensionParameters.MatchCrops),
            InputHeight = inputHeight,
            InputWidth = inputWidth,
            DistanceMeasure = measure,
            IndexBackend = backend,
            Algorithm = ParameterValues.ParseAlgorithm(reader.Filled(ExtensionParameters.AlgorithmConfig)),
            NeighborsCount = reader.Integer(ExtensionParameters.NeighborsCount),
            BatchSize = reader.Integer(ExtensionParameters.BatchSize),
            ShardSize = ParameterValues.ParseShardSize(reader.Filled(ExtensionParameters.ShardSize)),
            MachineType = reader.Filled(ExtensionParameters.MachineType),
            AcceleratorType = reader.Filled(ExtensionParameters.AcceleratorType),
            AcceleratorCount = reader.Integer(ExtensionParameters.AcceleratorCount),
            MinReplicaCount = minReplicas,
            MaxReplicaCount = maxReplicas,
            PendingWriteRetryDelay = TimeSpan.FromSeconds(reader.Integer(ExtensionParameters.PendingWriteRetrySeconds)),
            BackfillMaxAttempts = reader.Integer(ExtensionParameters.BackfillMaxAttempts),
            MaxImagePixels = reader.Integer(ExtensionParameters.MaxImagePixels),
            MaxImageBytes = reader.Integer(ExtensionParameters.MaxImageBytes),
            MaxQueryImages = reader.Integer(ExtensionParameters.MaxQueryImages),
            EnforceAppCheck = enforceAppCheck,
            ProjectNumber = projectNumber,
        };
    }

    /// <summary>An empty or missing value is "not set": the parameter's default, or null when it has none.</summary>
    private sealed class Reader(IConfiguration configuration)
    {
        /// <summary>The checked value; null only for a parameter that is not required and has no default.</summary>
        public string? Value(ExtensionParameter parameter)
        {
            var value = configuration[parameter.Name]?.Trim();
            if (string.IsNullOrEmpty(value))
            {
                return parameter.DefaultText
                    ?? (parameter.IsRequired ? throw new InvalidConfigurationException(parameter.Name, null, "is required") : null);
            }

            return parameter.Accepts(value) ? value : throw new InvalidConfigurationException(parameter.Name, value, parameter.Rule);
        }

        /// <summary>The checked value or default of a parameter that is required or has a default.</summary>
        public string Filled(ExtensionParameter parameter) => Value(parameter)!;

        public bool Boolean(BooleanParameter parameter) => Value(parameter) == "true";

        public int Integer(IntegerParameter parameter) => parameter.Parse(Value(parameter)!)!.Value;
    }
}
