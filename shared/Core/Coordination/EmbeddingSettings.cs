using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Core.Coordination;

/// <summary>
/// What an index's vectors were made with: the model and MATCH_COLOR. Vectors made with other settings live in
/// another space (a colour vector and a luma vector of the same picture are not near each other), so the metadata
/// document records these when a backfill starts and <see cref="CoordinationState.ReadIndexAvailabilityAsync"/> compares them
/// with the running settings: a query against vectors made otherwise is refused instead of answered with nonsense.
/// </summary>
/// <param name="Model">MODEL_URL, or the bundled model and its precision; null when not recorded (an index made
/// before the settings were recorded: its model is not compared).</param>
/// <param name="MatchColor">MATCH_COLOR.</param>
public sealed record EmbeddingSettings(string? Model, bool MatchColor)
{
    /// <summary>
    /// An index whose metadata records no settings was made before MATCH_COLOR existed, when the model was always fed
    /// luma: MATCH_COLOR=false.
    /// </summary>
    public static readonly EmbeddingSettings BeforeMatchColor = new(null, MatchColor: false);

    public static EmbeddingSettings Of(ExtensionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var model = options.ModelUrl ?? $"bundled MobileNetV2 ({options.ModelPrecision.ToString().ToLowerInvariant()})";
        return new EmbeddingSettings(model, options.MatchColor);
    }

    /// <summary>
    /// Null when vectors made with <paramref name="recorded"/> can be searched with vectors made with these settings;
    /// otherwise one sentence for the user: both settings and what to do.
    /// </summary>
    public string? MismatchWith(EmbeddingSettings recorded)
    {
        ArgumentNullException.ThrowIfNull(recorded);
        var color = recorded.MatchColor != MatchColor;
        var model = recorded.Model is not null && recorded.Model != Model;
        if (!color && !model)
        {
            return null;
        }

        var differences = new List<string>();
        if (color)
        {
            differences.Add($"MATCH_COLOR={Lower(recorded.MatchColor)} (now {Lower(MatchColor)})");
        }

        if (model)
        {
            differences.Add($"the model {recorded.Model} (now {Model})");
        }

        return $"The index holds vectors made with {string.Join(" and ", differences)}; they cannot be searched with the "
            + "current settings. Set the parameters back to the index's, or embed every image again with the new ones "
            + "(install a new instance, whose backfill embeds every image).";
    }

    public override string ToString() => $"model {Model ?? "(not recorded)"}, MATCH_COLOR={Lower(MatchColor)}";

    private static string Lower(bool value) => value ? "true" : "false";
}
