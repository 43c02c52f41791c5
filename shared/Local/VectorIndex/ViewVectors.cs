using System.Numerics.Tensors;
using ReverseImageSearch.Core.Coordination;

namespace ReverseImageSearch.Local.VectorIndex;

/// <summary>
/// The views of an <see cref="InProcessVectorIndex"/>'s images (MATCH_CROPS, <see cref="ImageViews"/>), kept apart from
/// the image rows so that the main scan costs what it costs without them: a dense float32 slab like the index's, with
/// each image's view rows found by the image's id. A view is stored whether or not its image is; it is only read for
/// an image a search has already found, so a view whose image is absent never answers. Not thread-safe: the index's
/// lock guards it.
/// </summary>
internal sealed class ViewVectors(int dimensions)
{
    private readonly Dictionary<string, int> _rowOfId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int[]> _rowsOfImage = new(StringComparer.Ordinal);
    private float[] _slab = new float[16 * dimensions];
    private float[] _norms = new float[16];
    private string[] _idOfRow = new string[16];

    public int Count { get; private set; }

    /// <summary>Bytes allocated for the view vectors and their norms; ids and maps excluded.</summary>
    public long Bytes => ((long)_slab.Length * sizeof(float)) + ((long)_norms.Length * sizeof(float));

    public string IdOfRow(int row) => _idOfRow[row];

    public ReadOnlyMemory<float> VectorOfRow(int row) => _slab.AsMemory(row * dimensions, dimensions);

    /// <summary>Adds or replaces the view <paramref name="id"/> (a view id: <see cref="ImageViews.IsView"/>).</summary>
    public void Set(string id, ReadOnlySpan<float> vector)
    {
        if (!_rowOfId.TryGetValue(id, out var row))
        {
            row = Count;
            InProcessVectorIndex.EnsureCapacity(Count + 1, dimensions, ref _slab, ref _norms, ref _idOfRow);
            _rowOfId[id] = row;
            _idOfRow[row] = id;
            var image = ImageViews.ImageOf(id);
            _rowsOfImage[image] = _rowsOfImage.TryGetValue(image, out var rows) ? [.. rows, row] : [row];
            Count++;
        }

        var target = _slab.AsSpan(row * dimensions, dimensions);
        vector.CopyTo(target);
        _norms[row] = TensorPrimitives.Norm<float>(target);
    }

    public bool Remove(string id)
    {
        if (!_rowOfId.Remove(id, out var row))
        {
            return false;
        }

        var image = ImageViews.ImageOf(id);
        var rows = _rowsOfImage[image];
        if (rows.Length == 1)
        {
            _rowsOfImage.Remove(image);
        }
        else
        {
            _rowsOfImage[image] = [.. rows.Where(r => r != row)];
        }

        var last = Count - 1;
        if (row != last)
        {
            // Swap-remove, as the image rows: the last row fills the hole and its image's list follows it.
            _slab.AsSpan(last * dimensions, dimensions).CopyTo(_slab.AsSpan(row * dimensions, dimensions));
            _norms[row] = _norms[last];
            var moved = _idOfRow[last];
            _idOfRow[row] = moved;
            _rowOfId[moved] = row;
            var movedRows = _rowsOfImage[ImageViews.ImageOf(moved)];
            movedRows[Array.IndexOf(movedRows, last)] = row;
        }

        _idOfRow[last] = null!;
        Count--;
        return true;
    }

    /// <summary>
    /// The best of <paramref name="score"/> (the image's own) and its views' scores for the query, by the scorer's
    /// order (smaller is nearer).
    /// </summary>
    public float BestScore<TScorer>(string image, float score, float[] query, float queryNorm, Span<float> scratch)
        where TScorer : struct, IDistanceScorer
    {
        if (!_rowsOfImage.TryGetValue(image, out var rows))
        {
            return score;
        }

        foreach (var row in rows)
        {
            var viewScore = TScorer.Score(query, queryNorm, _slab.AsSpan(row * dimensions, dimensions), _norms[row], scratch);
            if (viewScore < score)
            {
                score = viewScore;
            }
        }

        return score;
    }
}
