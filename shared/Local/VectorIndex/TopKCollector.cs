namespace ReverseImageSearch.Local.VectorIndex;

/// <summary>
/// Keeps the k smallest scores seen: a bounded max-heap whose root is the worst kept item. Given the rows' ids,
/// equal scores are ordered by ordinal id, so which k rows are kept never depends on the order they were offered
/// in (how the rows were split across threads, or which were scored at all). Without ids the first offered wins.
/// NaN scores are never kept.
/// </summary>
internal sealed class TopKCollector
{
    private readonly float[] _scores;
    private readonly int[] _rows;
    private readonly string[]? _idOfRow;
    private int _count;

    /// <param name="idOfRow">Breaks ties between equal scores: the smaller ordinal id is nearer.</param>
    public TopKCollector(int capacity, string[]? idOfRow = null)
    {
        _scores = new float[capacity];
        _rows = new int[capacity];
        _idOfRow = idOfRow;
    }

    public int Count => _count;

    /// <summary>
    /// A score must beat this, or (with ids) equal it, to be kept; +infinity until the heap is full. Callers test
    /// it before <see cref="Add"/>, which decides ties, so the hot loop makes no call for most rows.
    /// </summary>
    public float Threshold => _count < _scores.Length ? float.PositiveInfinity : _scores[0];

    public void Add(float score, int row)
    {
        if (float.IsNaN(score))
        {
            return;
        }

        if (_count < _scores.Length)
        {
            var index = _count++;
            // Sift up.
            while (index > 0)
            {
                var parent = (index - 1) / 2;
                if (!IsWorse(score, row, _scores[parent], _rows[parent]))
                {
                    break;
                }

                _scores[index] = _scores[parent];
                _rows[index] = _rows[parent];
                index = parent;
            }

            _scores[index] = score;
            _rows[index] = row;
        }
        else if (_count > 0 && IsWorse(_scores[0], _rows[0], score, row))
        {
            SiftDownFromRoot(score, row);
        }
    }

    public void AddFrom(TopKCollector other)
    {
        for (var i = 0; i < other._count; i++)
        {
            Add(other._scores[i], other._rows[i]);
        }
    }

    public IEnumerable<(float Score, int Row)> Items()
    {
        for (var i = 0; i < _count; i++)
        {
            yield return (_scores[i], _rows[i]);
        }
    }

    /// <summary>Whether (score, id) of the first item comes after the second's: the heap's order.</summary>
    private bool IsWorse(float score, int row, float otherScore, int otherRow) =>
        score > otherScore
        || (score == otherScore && _idOfRow is not null && string.CompareOrdinal(_idOfRow[row], _idOfRow[otherRow]) > 0);

    private void SiftDownFromRoot(float score, int row)
    {
        var index = 0;
        while (true)
        {
            var child = (2 * index) + 1;
            if (child >= _count)
            {
                break;
            }

            if (child + 1 < _count && IsWorse(_scores[child + 1], _rows[child + 1], _scores[child], _rows[child]))
            {
                child++;
            }

            if (!IsWorse(_scores[child], _rows[child], score, row))
            {
                break;
            }

            _scores[index] = _scores[child];
            _rows[index] = _rows[child];
            index = child;
        }

        _scores[index] = score;
        _rows[index] = row;
    }
}
