using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Core.Coordination;

/// <summary>
/// The extra vectors an image is stored with under MATCH_CROPS: views of the parts of the picture its upright centre
/// square (the image's own vector) misses or shows small, so a cropped copy finds its original. Each view is a
/// datapoint of its own, whose id is the object name, a line feed and the view's name (Cloud Storage object names
/// cannot hold a line feed, so a view id is never an image's), written with the image's folders and the image as its
/// crowding tag. Every engine answers an image once, under the image's id, with the best distance of its datapoints.
/// </summary>
public static class ImageViews
{
    /// <summary>Between the object name and the view's name in a view's datapoint id.</summary>
    public const char Separator = '\n';

    /// <summary>The square at the start of the long side (left of a wide picture, top of a tall one).</summary>
    public const string StartSquare = "start";

    /// <summary>The square at the end of the long side (right of a wide picture, bottom of a tall one).</summary>
    public const string EndSquare = "end";

    /// <summary>The centre square at 70% of its side.</summary>
    public const string CenterZoom = "zoom";

    /// <summary>Every view an image may be stored with; a near-square picture has no end squares.</summary>
    public static IReadOnlyList<string> Names { get; } = [StartSquare, EndSquare, CenterZoom];

    public static string Id(string objectName, string view)
    {
        ArgumentNullException.ThrowIfNull(objectName);
        ArgumentException.ThrowIfNullOrEmpty(view);
        return string.Concat(objectName, Separator.ToString(), view);
    }

    /// <summary>The image's own datapoint id and every view id it may have: what removing the image removes.</summary>
    public static IReadOnlyList<string> AllIds(string objectName) => [objectName, .. Names.Select(name => Id(objectName, name))];

    /// <summary>The image a datapoint belongs to: the object name of a view id, an image's id itself.</summary>
    public static string ImageOf(string datapointId)
    {
        ArgumentNullException.ThrowIfNull(datapointId);
        var separator = datapointId.IndexOf(Separator, StringComparison.Ordinal);
        return separator < 0 ? datapointId : datapointId[..separator];
    }

    public static bool IsView(string datapointId)
    {
        ArgumentNullException.ThrowIfNull(datapointId);
        return datapointId.Contains(Separator, StringComparison.Ordinal);
    }

    /// <summary>What storing an embedded image writes, in one upsert: the image's own datapoint and one per view it has.</summary>
    public static IReadOnlyList<IndexDatapoint> Datapoints(string objectName, EmbeddingResult embedding)
    {
        ArgumentNullException.ThrowIfNull(embedding);
        var vector = embedding.Vector ?? throw new ArgumentException($"{objectName} has no vector: {embedding.RejectionReason}", nameof(embedding));
        return [IndexDatapoint.ForImage(objectName, vector), .. embedding.Views.Select(view => IndexDatapoint.ForView(objectName, view))];
    }

    /// <summary>
    /// The ids a write of <paramref name="objectName"/> takes out of the index: every id it may have when it has no
    /// vector (<paramref name="embedding"/> null: deleted or not read; or rejected), whatever MATCH_CROPS says, so
    /// nothing of it survives a change of the setting; with MATCH_CROPS, the views it does not have now (a wide picture
    /// overwritten by a square one); else none.
    /// </summary>
    public static IReadOnlyList<string> StaleIds(string objectName, EmbeddingResult? embedding, bool matchCrops)
    {
        if (embedding?.Vector is null)
        {
            return AllIds(objectName);
        }

        return matchCrops
            ? Names.Where(name => !embedding.Views.Any(view => view.Name == name)).Select(name => Id(objectName, name)).ToArray()
            : [];
    }

    /// <summary>
    /// One neighbour per image, under the image's id, from neighbours nearest first: an image keeps its first (nearest)
    /// datapoint, itself or a view, with that datapoint's distance; then the <paramref name="count"/> nearest images.
    /// </summary>
    public static IReadOnlyList<Neighbor> BestPerImage(IEnumerable<Neighbor> nearestFirst, int count)
    {
        ArgumentNullException.ThrowIfNull(nearestFirst);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var best = new List<Neighbor>(Math.Min(count, 1024));
        foreach (var neighbor in nearestFirst)
        {
            if (best.Count == count)
            {
                break;
            }

            var image = ImageOf(neighbor.DatapointId);
            if (seen.Add(image))
            {
                best.Add(image.Length == neighbor.DatapointId.Length ? neighbor : neighbor with { DatapointId = image });
            }
        }

        return best;
    }
}
