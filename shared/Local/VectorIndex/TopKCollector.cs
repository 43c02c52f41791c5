namespace ReverseImageSearch.Local.VectorIndex;

/// <summary>Keeps the k smallest scores seen: a bounded max-heap whose root is the worst kept score.</summary>
internal sealed class TopKCollector
{
    private readonly float[] _scores;
    private readonly int[] _rows;
    private int _count;

    public TopKCollector(int capacity)
    {
        _scores = new float[capacity];
        _rows = new int[capacity];
    }

    public int Count => _count;

    /// <summary>A score must beat this to be kept; +infinity until the heap is full.</summary>
    public float Threshold => _count < _scores.Length ? float.PositiveInfinity : _scores[0];

    public void Add(float score, int row)
    {
        if (_count < _scores.Length)
        {
            var index = _count++;
            // Sift up.
            while (index > 0)
            {
                var parent = (index - 1) / 2;
                if (_scores[parent] >= score)
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
        else if (score < _scores[0])
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

            if (child + 1 < _count && _scores[child + 1] > _scores[child])
            {
                child++;
            }

            if (_scores[child] <= score)
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
