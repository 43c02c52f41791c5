using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Local.VectorIndex;

/// <param name="Distance">As Vertex AI reports it for the index's measure (see <see cref="InProcessVectorIndex"/>).</param>
public sealed record VectorMatch(string Id, double Distance);

/// <summary>
/// Exact k-nearest-neighbour search over vectors held in one contiguous float slab (row i at i*dimensions),
/// with id-to-row maps and swap-remove so the slab stays dense. Distances follow Vertex AI:
/// SQUARED_L2_DISTANCE, L1_DISTANCE and COSINE_DISTANCE (1 - cosine similarity) rank ascending;
/// DOT_PRODUCT_DISTANCE reports the dot product itself and ranks the largest first.
/// Thread-safe: many concurrent searches, one writer at a time. Opened over a directory it is durable:
/// every acknowledged upsert or remove survives a crash.
/// </summary>
public sealed class InProcessVectorIndex : IDisposable
{
    /// <summary>Below this many multiply-adds a query batch runs on one thread: forking costs more than it saves.</summary>
    private const long ParallelWorkThreshold = 1L << 21;

    private const int MinRowsPerPartition = 256;

    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly Dictionary<string, int> _rowOfId = new(StringComparer.Ordinal);
    private readonly VectorIndexJournal? _journal;
    private readonly QuantizedVectorSearch? _quantized;
    private float[] _slab;
    private float[] _norms;
    private string[] _idOfRow;
    private int _count;

    /// <param name="quantizedSearch">Answer searches from an int8 copy with float16 rescoring (see
    /// <see cref="QuantizedVectorSearch"/>): about 3x faster on large indexes, recall@10 about 0.99, 0.75x more memory
    /// on top of the float32 vectors. Only for DOT_PRODUCT_DISTANCE, and COSINE_DISTANCE on unit vectors; ignored otherwise.</param>
    public InProcessVectorIndex(int dimensions, DistanceMeasure measure, bool normalizeToUnitLength = false, bool quantizedSearch = false)
        : this(dimensions, measure, normalizeToUnitLength, journal: null, quantizedSearch)
    {
    }

    private InProcessVectorIndex(int dimensions, DistanceMeasure measure, bool normalizeToUnitLength, VectorIndexJournal? journal, bool quantizedSearch)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dimensions);
        Dimensions = dimensions;
        Measure = measure;
        NormalizesToUnitLength = normalizeToUnitLength;
        _slab = new float[16 * dimensions];
        _norms = new float[16];
        _idOfRow = new string[16];
        _journal = journal;
        var innerProduct = measure == DistanceMeasure.DotProduct || (measure == DistanceMeasure.Cosine && normalizeToUnitLength);
        _quantized = quantizedSearch && innerProduct ? new QuantizedVectorSearch(dimensions) : null;
    }

    /// <summary>Whether searches are answered from the quantised copy.</summary>
    public bool UsesQuantizedSearch => _quantized is not null;

    public int Dimensions { get; }

    public DistanceMeasure Measure { get; }

    /// <summary>featureNormType UNIT_L2_NORM: vectors and queries are scaled to length 1 first.</summary>
    public bool NormalizesToUnitLength { get; }

    public int Count
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                return _count;
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    /// <summary>The log grows until it passes this size (or the size of the vectors, if larger), then is compacted.</summary>
    internal long CompactionThresholdBytes { get; set; } = 64L << 20;

    /// <summary>Opens (or creates) a durable index whose files live in <paramref name="directory"/>.</summary>
    public static InProcessVectorIndex Open(
        string directory, int dimensions, DistanceMeasure measure, bool normalizeToUnitLength, ILogger logger, bool quantizedSearch = false)
    {
        var journal = new VectorIndexJournal(directory, dimensions, logger);
        var index = new InProcessVectorIndex(dimensions, measure, normalizeToUnitLength, journal, quantizedSearch);
        try
        {
            // Stored vectors are already normalised; replay them as they are.
            journal.Load(index.ApplyUpsert, id => index.ApplyRemove(id));
            return index;
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>Adds or replaces vectors, all or none. Throws <see cref="ArgumentException"/> on a wrong dimension.</summary>
    public void Upsert(IReadOnlyList<IndexDatapoint> datapoints)
    {
        ArgumentNullException.ThrowIfNull(datapoints);
        var prepared = new List<(string Id, float[] Vector)>(datapoints.Count);
        foreach (var datapoint in datapoints)
        {
            ArgumentException.ThrowIfNullOrEmpty(datapoint.DatapointId);
            prepared.Add((datapoint.DatapointId, Prepare(datapoint.FeatureVector, $"datapoint '{datapoint.DatapointId}'")));
        }

        _lock.EnterWriteLock();
        try
        {
            _journal?.AppendUpserts(prepared);
            foreach (var (id, vector) in prepared)
            {
                ApplyUpsert(id, vector);
            }

            CompactIfDue();
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public void Upsert(string id, float[] vector) => Upsert([new IndexDatapoint(id, vector)]);

    /// <returns>How many of the ids were present.</returns>
    public int Remove(IReadOnlyList<string> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        _lock.EnterWriteLock();
        try
        {
            _journal?.AppendRemoves(ids);
            var removed = ids.Count(ApplyRemove);
            CompactIfDue();
            return removed;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public bool Contains(string id)
    {
        _lock.EnterReadLock();
        try
        {
            return _rowOfId.ContainsKey(id);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>The stored vector (normalised if the index normalises), or null.</summary>
    public float[]? GetVector(string id)
    {
        _lock.EnterReadLock();
        try
        {
            return _rowOfId.TryGetValue(id, out var row) ? _slab.AsSpan(row * Dimensions, Dimensions).ToArray() : null;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    public IReadOnlyList<VectorMatch> Search(float[] query, int neighborCount) => SearchBatch([query], neighborCount)[0];

    /// <summary>The <paramref name="neighborCount"/> nearest vectors of each query, nearest first, in query order.</summary>
    public IReadOnlyList<IReadOnlyList<VectorMatch>> SearchBatch(IReadOnlyList<float[]> queries, int neighborCount)
    {
        ArgumentNullException.ThrowIfNull(queries);
        ArgumentOutOfRangeException.ThrowIfNegative(neighborCount);
        var prepared = queries.Select((query, i) => Prepare(query, $"query {i}")).ToArray();
        _lock.EnterReadLock();
        try
        {
            if (_quantized is not null)
            {
                return SearchQuantized(prepared, neighborCount);
            }

            return Measure switch
            {
                DistanceMeasure.SquaredL2 => SearchAll<SquaredL2Scorer>(prepared, neighborCount),
                DistanceMeasure.L1 => SearchAll<L1Scorer>(prepared, neighborCount),
                DistanceMeasure.Cosine => SearchAll<CosineScorer>(prepared, neighborCount),
                DistanceMeasure.DotProduct => SearchAll<DotProductScorer>(prepared, neighborCount),
                _ => throw new InvalidOperationException($"Unknown distance measure {Measure}."),
            };
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Writes a snapshot and empties the log (durable indexes only).</summary>
    public void Compact()
    {
        _lock.EnterWriteLock();
        try
        {
            _journal?.Compact(_count, row => _idOfRow[row], _slab);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public void Dispose()
    {
        _journal?.Dispose();
        _lock.Dispose();
    }

    private float[] Prepare(float[] vector, string what)
    {
        ArgumentNullException.ThrowIfNull(vector);
        if (vector.Length != Dimensions)
        {
            throw new ArgumentException($"The {what} has {vector.Length} dimensions; the index has {Dimensions}.", nameof(vector));
        }

        if (!TensorPrimitives.IsFiniteAll<float>(vector))
        {
            throw new ArgumentException($"The {what} contains NaN or infinity.", nameof(vector));
        }

        var copy = vector.ToArray();
        if (NormalizesToUnitLength)
        {
            var norm = TensorPrimitives.Norm<float>(copy);
            if (norm > 0)
            {
                TensorPrimitives.Divide(copy, norm, copy);
            }
        }

        return copy;
    }

    private void ApplyUpsert(string id, ReadOnlySpan<float> vector)
    {
        if (!_rowOfId.TryGetValue(id, out var row))
        {
            row = _count;
            EnsureCapacity(_count + 1);
            _rowOfId[id] = row;
            _idOfRow[row] = id;
            _count++;
        }

        var target = _slab.AsSpan(row * Dimensions, Dimensions);
        vector.CopyTo(target);
        _norms[row] = TensorPrimitives.Norm<float>(target);
        _quantized?.SetRow(row, id, target);
    }

    private bool ApplyRemove(string id)
    {
        if (!_rowOfId.Remove(id, out var row))
        {
            return false;
        }

        var last = _count - 1;
        _quantized?.MoveLastInto(row);
        if (row != last)
        {
            // Swap-remove: the last row fills the hole so the slab stays dense.
            _slab.AsSpan(last * Dimensions, Dimensions).CopyTo(_slab.AsSpan(row * Dimensions, Dimensions));
            _norms[row] = _norms[last];
            _idOfRow[row] = _idOfRow[last];
            _rowOfId[_idOfRow[row]] = row;
        }

        _idOfRow[last] = null!;
        _count--;
        return true;
    }

    private void EnsureCapacity(int rows)
    {
        if (rows <= _idOfRow.Length)
        {
            return;
        }

        var capacity = Math.Max(rows, _idOfRow.Length * 2);
        Array.Resize(ref _slab, capacity * Dimensions);
        Array.Resize(ref _norms, capacity);
        Array.Resize(ref _idOfRow, capacity);
    }

    private void CompactIfDue()
    {
        if (_journal is not null && _journal.LogLength > Math.Max(CompactionThresholdBytes, (long)_count * Dimensions * sizeof(float)))
        {
            _journal.Compact(_count, row => _idOfRow[row], _slab);
        }
    }

    private IReadOnlyList<VectorMatch>[] SearchQuantized(float[][] queries, int neighborCount) =>
        queries.Select(query =>
        {
            var matches = _quantized!.Search(query, neighborCount);
            // The search reports the inner product; COSINE_DISTANCE on unit vectors is 1 minus it.
            return Measure == DistanceMeasure.Cosine
                ? (IReadOnlyList<VectorMatch>)matches.Select(m => m with { Distance = 1 - m.Distance }).ToArray()
                : matches;
        }).ToArray();

    private IReadOnlyList<VectorMatch>[] SearchAll<TScorer>(float[][] queries, int neighborCount)
        where TScorer : struct, IDistanceScorer
    {
        var k = Math.Min(neighborCount, _count);
        if (k == 0 || queries.Length == 0)
        {
            return queries.Select(_ => (IReadOnlyList<VectorMatch>)[]).ToArray();
        }

        var queryNorms = queries.Select(query => TensorPrimitives.Norm<float>(query)).ToArray();
        var work = (long)_count * Dimensions * queries.Length;
        var partitions = work < ParallelWorkThreshold || Environment.ProcessorCount == 1
            ? 1
            : Math.Clamp(_count / MinRowsPerPartition, 1, Environment.ProcessorCount * 4);
        var rowsPerPartition = (_count + partitions - 1) / partitions;
        var collected = new TopKCollector[partitions][];

        void ScanPartition(int partition)
        {
            var collectors = new TopKCollector[queries.Length];
            for (var q = 0; q < queries.Length; q++)
            {
                collectors[q] = new TopKCollector(k);
            }

            var scratch = new float[Dimensions];
            var first = partition * rowsPerPartition;
            var end = Math.Min(_count, first + rowsPerPartition);
            ReadOnlySpan<float> slab = _slab;
            // Rows outer, queries inner: each row is read from memory once for the whole batch.
            for (var row = first; row < end; row++)
            {
                var vector = slab.Slice(row * Dimensions, Dimensions);
                var rowNorm = _norms[row];
                for (var q = 0; q < queries.Length; q++)
                {
                    var score = TScorer.Score(queries[q], queryNorms[q], vector, rowNorm, scratch);
                    if (score < collectors[q].Threshold)
                    {
                        collectors[q].Add(score, row);
                    }
                }
            }

            collected[partition] = collectors;
        }

        if (partitions == 1)
        {
            ScanPartition(0);
        }
        else
        {
            Parallel.For(0, partitions, ScanPartition);
        }

        var results = new IReadOnlyList<VectorMatch>[queries.Length];
        for (var q = 0; q < queries.Length; q++)
        {
            var merged = collected[0][q];
            for (var partition = 1; partition < partitions; partition++)
            {
                merged.AddFrom(collected[partition][q]);
            }

            results[q] = merged.Items()
                .Select(item => (item.Score, Id: _idOfRow[item.Row]))
                .OrderBy(item => item.Score)
                .ThenBy(item => item.Id, StringComparer.Ordinal)
                .Select(item => new VectorMatch(item.Id, TScorer.Reported(item.Score)))
                .ToArray();
        }

        return results;
    }
}
