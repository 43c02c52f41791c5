using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Core.Coordination;

/// <summary>
/// What an index's vectors were made with: the model, MATCH_COLOR and MATCH_CROPS. Vectors made with other settings live
/// in another space (a colour vector and a luma vector of the same picture are not near each other), or are missing the
/// views the running settings search with (or hold views they no longer write and remove), so the metadata
/// document records these when a backfill starts and <see cref="CoordinationState.ReadIndexAvailabilityAsync"/> compares them
/// with the running settings: a query against vectors made otherwise is refused instead of answered with nonsense.
/// </summary>
/// <param name="Model">MODEL_URL, or the bundled model and its precision; null when not recorded (an index made
/// before the settings were recorded: its model is not compared).</param>
/// <param name="MatchColor">MATCH_COLOR.</param>
/// <param name="MatchCrops">MATCH_CROPS: whether every image is stored with its views (<see cref="ImageViews"/>); false
/// when not recorded (an index made before MATCH_CROPS existed holds no views).</param>
public sealed record EmbeddingSettings(string? Model, bool MatchColor, bool MatchCrops = false)
{
    /// <summary>
    /// An index whose metadata records no settings was made before MATCH_COLOR existed, when the model was always fed
    /// luma: MATCH_COLOR=false (and, as before MATCH_CROPS, no views).
    /// </summary>
    public static readonly EmbeddingSettings BeforeMatchColor = new(null, MatchColor: false);

    public static EmbeddingSettings Of(ExtensionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var model = options.ModelUrl ?? $"bundled MobileNetV2 ({options.ModelPrecision.ToString().ToLowerInvariant()})";
        return new EmbeddingSettings(model, options.MatchColor, options.MatchCrops);
    }

    /// <summary>
    /// Null when vectors made with <paramref name="recorded"/> can be searched with vectors made with these settings;
    /// otherwise one sentence for the user: both settings and what to do.
    /// </summary>
    public string? MismatchWith(EmbeddingSettings recorded)
    {
        ArgumentNullException.ThrowIfNull(recorded);
        var color = recorded.MatchColor != MatchColor;
        var crops = recorded.MatchCrops != MatchCrops;
        var model = recorded.Model is not null && recorded.Model != Model;
        if (!color && !crops && !model)
        {
            return null;
        }

        var differences = new List<string>();
        if (color)
        {
            differences.Add($"MATCH_COLOR={Lower(recorded.MatchColor)} (now {Lower(MatchColor)})");
        }

        if (crops)
        {
            differences.Add($"MATCH_CROPS={Lower(recorded.MatchCrops)} (now {Lower(MatchCrops)})");
        }

        if (model)
        {
            differences.Add($"the model {recorded.Model} (now {Model})");
        }

        return $"The index holds vectors made with {string.Join(" and ", differences)}; they cannot be searched with the "
            + "current settings. Set the parameters back to the index's, or embed every image again with the new ones "
            + "(install a new instance, whose backfill embeds every image).";
    }

    public override string ToString() => $"model {Model ?? "(not recorded)"}, MATCH_COLOR={Lower(MatchColor)}, MATCH_CROPS={Lower(MatchCrops)}";

    private static string Lower(bool value) => value ? "true" : "false";
}
