using System.Buffers;
using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Local.VectorIndex;

/// <param name="Distance">As Vertex AI reports it for the index's measure (see <see cref="InProcessVectorIndex"/>).</param>
public sealed record VectorMatch(string Id, double Distance);

/// <summary>How an <see cref="InProcessVectorIndex"/> answers searches.</summary>
public enum VectorSearchMode
{
    /// <summary>
    /// Exact, and for DOT_PRODUCT_DISTANCE and COSINE_DISTANCE faster than <see cref="Float32Scan"/> with the very
    /// same answers: an int8 copy of the vectors with per-row error bounds picks the few rows that can still be
    /// among the nearest, and only those are scored in float32 (see <see cref="ExactSearchFilter"/>). Costs about a
    /// quarter more memory than the float32 vectors. Other measures, or a CPU without 256-bit vectors, scan.
    /// </summary>
    Exact,

    /// <summary>Exact: every float32 row is scored for every query. The least memory.</summary>
    Float32Scan,

    /// <summary>
    /// Approximate (Vertex AI's treeAhConfig): an int8 scan with float16 rescoring (see <see cref="QuantizedVectorSearch"/>),
    /// recall@10 about 0.99, 0.75x more memory on top of the float32 vectors. Only for DOT_PRODUCT_DISTANCE, and
    /// COSINE_DISTANCE on unit vectors; <see cref="Exact"/> otherwise.
    /// </summary>
    Quantized,
}

/// <summary>
/// k-nearest-neighbour search over vectors held in one contiguous float slab (row i at i*dimensions),
/// with id-to-row maps and swap-remove so the slab stays dense; exact unless built <see cref="VectorSearchMode.Quantized"/>.
/// Distances follow Vertex AI: SQUARED_L2_DISTANCE, L1_DISTANCE and COSINE_DISTANCE (1 - cosine similarity) rank
/// ascending; DOT_PRODUCT_DISTANCE reports the dot product itself and ranks the largest first. Equal distances rank
/// by ordinal id, so an exact search's answer depends only on the stored vectors, never on threads or row order.
/// Thread-safe: many concurrent searches, one writer at a time. Opened over a directory it is durable:
/// every acknowledged upsert or remove survives a crash.
/// <para>
/// A datapoint whose id is a view's (<see cref="ImageViews.IsView"/>: MATCH_CROPS) is kept out of the rows searched:
/// a search takes a shortlist of images by their own vectors (as without views, folder restriction included), scores
/// each shortlisted image's views too, and answers each image once, under its own id, with its best distance. Removing
/// an image does not remove its views (writers remove <see cref="ImageViews.AllIds"/>); a view whose image is absent is
/// never read. With no view stored a search is exactly the search without them.
/// </para>
/// </summary>
public sealed partial class InProcessVectorIndex : IDisposable
{
    /// <summary>Below this many multiply-adds a query batch runs on one thread: forking costs more than it saves.</summary>
    private const long ParallelWorkThreshold = 1L << 21;

    private const int MinRowsPerPartition = 256;

    /// <summary>Queries filtered together: each row's codes are read once per block, and a block holds a lower
    /// bound per row per query.</summary>
    private const int FilterQueryBlock = 8;

    /// <summary>
    /// With views stored, a query rescores the max(<see cref="ViewShortlistMinimum"/>, this x k) images nearest by their
    /// own vectors with their views (80 for the callable's default 10). Measured at 100k images with 3 views each
    /// (BENCHMARKS.md 6b, "Cost of MATCH_CROPS in the product"): the shortlist and its rescoring add 1.7% CPU time to
    /// a query (the int8 filter scores about as many float32 rows for 80 as for 10); query p50 within the noise.
    /// </summary>
    private const int ViewShortlistPerNeighbor = 8;

    private const int ViewShortlistMinimum = 64;

    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly Dictionary<string, int> _rowOfId = new(StringComparer.Ordinal);
    private readonly VectorIndexJournal? _journal;
    private readonly QuantizedVectorSearch? _quantized;
    private readonly ExactSearchFilter? _filter;
    private readonly ViewVectors _views;
    private float[] _slab;
    private float[] _norms;
    private string[] _idOfRow;
    private int _count;

    /// <summary>While a journal is replayed the int8 codes wait, and are built once, in parallel, at the end.</summary>
    private bool _filterDeferred;

    /// <param name="searchMode">Asked for; <see cref="SearchMode"/> tells what applies to this measure on this CPU.</param>
    public InProcessVectorIndex(
        int dimensions, DistanceMeasure measure, bool normalizeToUnitLength = false, VectorSearchMode searchMode = VectorSearchMode.Exact)
        : this(dimensions, measure, normalizeToUnitLength, journal: null, searchMode)
    {
    }

    private InProcessVectorIndex(
        int dimensions, DistanceMeasure measure, bool normalizeToUnitLength, VectorIndexJournal? journal, VectorSearchMode searchMode)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dimensions);
        Dimensions = dimensions;
        Measure = measure;
        NormalizesToUnitLength = normalizeToUnitLength;
        _slab = new float[16 * dimensions];
        _norms = new float[16];
        _idOfRow = new string[16];
        _views = new ViewVectors(dimensions);
        _journal = journal;
        // The quantised search ranks by inner product alone; the exact filter bounds the scorer's own arithmetic,
        // row norms included, so it serves cosine on vectors of any length.
        var innerProduct = measure == DistanceMeasure.DotProduct || (measure == DistanceMeasure.Cosine && normalizeToUnitLength);
        var filterable = (measure is DistanceMeasure.DotProduct or DistanceMeasure.Cosine) && ExactSearchFilter.Supports(dimensions);
        SearchMode = searchMode switch
        {
            VectorSearchMode.Quantized when innerProduct => VectorSearchMode.Quantized,
            VectorSearchMode.Quantized or VectorSearchMode.Exact when filterable => VectorSearchMode.Exact,
            _ => VectorSearchMode.Float32Scan,
        };
        _quantized = SearchMode == VectorSearchMode.Quantized ? new QuantizedVectorSearch(dimensions) : null;
        _filter = SearchMode == VectorSearchMode.Exact ? new ExactSearchFilter(dimensions) : null;
    }

    /// <summary>How searches are answered: as asked for, or <see cref="VectorSearchMode.Float32Scan"/> where that does not apply.</summary>
    public VectorSearchMode SearchMode { get; }

    /// <summary>Bytes allocated for the vectors: the float32 slab and norms, plus the int8 codes of the mode, plus the views'
    /// float32 vectors; ids excluded.</summary>
    public long VectorBytes
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                return ((long)_slab.Length * sizeof(float)) + ((long)_norms.Length * sizeof(float)) + (_filter?.Bytes ?? 0) + (_quantized?.VectorBytes ?? 0) + _views.Bytes;
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    public int Dimensions { get; }

    public DistanceMeasure Measure { get; }

    /// <summary>featureNormType UNIT_L2_NORM: vectors and queries are scaled to length 1 first.</summary>
    public bool NormalizesToUnitLength { get; }

    /// <summary>The images' datapoints (views not counted).</summary>
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

    /// <summary>The views' datapoints.</summary>
    public int ViewCount
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                return _views.Count;
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    /// <summary>The log grows until it passes this size (or the size of the vectors, if larger), then is compacted.</summary>
    internal long CompactionThresholdBytes { get; set; } = 64L << 20;

    /// <summary>
    /// Opens (or creates) a durable index whose files live in <paramref name="directory"/>. When its snapshot
    /// is damaged, <paramref name="rebuildFrom"/> supplies the rows the index was built from, the journal is
    /// replayed over them and a sound snapshot written; without it, opening fails naming the damaged file.
    /// </summary>
    public static InProcessVectorIndex Open(
        string directory, int dimensions, DistanceMeasure measure, bool normalizeToUnitLength, ILogger logger,
        VectorSearchMode searchMode = VectorSearchMode.Exact, Func<IReadOnlyList<IndexDatapoint>>? rebuildFrom = null)
    {
        var journal = new VectorIndexJournal(directory, dimensions, logger);
        var index = new InProcessVectorIndex(dimensions, measure, normalizeToUnitLength, journal, searchMode);
        try
        {
            // Stored vectors are already normalised; replay them as they are.
            index._filterDeferred = true;
            Action? rebuildBase = rebuildFrom is null ? null : () =>
            {
                foreach (var datapoint in rebuildFrom())
                {
                    index.ApplyUpsert(datapoint.DatapointId, index.Prepare(datapoint.FeatureVector, $"datapoint '{datapoint.DatapointId}'"));
                }
            };
            var rebuilt = journal.Load(index.ApplyUpsert, id => index.ApplyRemove(id), rebuildBase);
            index._filterDeferred = false;
            index._filter?.Rebuild(index._slab, index._count);
            if (rebuilt)
            {
                TryCompact(index, logger);
            }

            return index;
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>Writes the rebuilt rows as the new snapshot; a read-only folder keeps the damaged one (rebuilt again next time).</summary>
    private static void TryCompact(InProcessVectorIndex index, ILogger logger)
    {
        try
        {
            index.Compact();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogRebuiltIndexNotSaved(logger, e.Message);
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

    /// <summary>The stored vector of an image (normalised if the index normalises), or null.</summary>
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

    /// <summary>
    /// The port's queries: each answered as <see cref="SearchBatch"/> does, a query with a folder from the datapoints
    /// under it only. A datapoint's folders are those of its id, which is the object name (<see cref="IndexDatapoint.ForImage"/>),
    /// so vectors stored before folders were written are found under their folders too.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<VectorMatch>> Search(IReadOnlyList<NeighborQuery> queries, int neighborCount)
    {
        ArgumentNullException.ThrowIfNull(queries);
        var results = new IReadOnlyList<VectorMatch>[queries.Count];
        foreach (var group in queries.Select((query, i) => (Query: query, Index: i)).GroupBy(q => q.Query.Folder))
        {
            var folder = group.Key;
            var matches = SearchBatch(
                group.Select(q => q.Query.FeatureVector).ToList(), neighborCount, folder is null ? null : id => ImageFolders.Contains(folder, id));
            var i = 0;
            foreach (var (_, index) in group)
            {
                results[index] = matches[i++];
            }
        }

        return results;
    }

    /// <summary>The stored datapoints of <paramref name="ids"/> (vectors as stored, folders of their ids); an unknown id is left out.</summary>
    public IReadOnlyList<IndexDatapoint> Read(IReadOnlyList<string> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return ids.Distinct(StringComparer.Ordinal)
            .Select(id => GetVector(id) is { } vector ? IndexDatapoint.ForImage(id, vector) : null)
            .OfType<IndexDatapoint>()
            .ToArray();
    }

    /// <summary>
    /// The <paramref name="neighborCount"/> nearest images of each query, nearest first, in query order; with
    /// <paramref name="include"/>, among the image ids it accepts only (a scan of those rows, still exact). With views
    /// stored, the nearest of a shortlist of images by their own vectors, each at the best distance of its datapoints.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<VectorMatch>> SearchBatch(IReadOnlyList<float[]> queries, int neighborCount, Func<string, bool>? include = null)
    {
        ArgumentNullException.ThrowIfNull(queries);
        ArgumentOutOfRangeException.ThrowIfNegative(neighborCount);
        var prepared = queries.Select((query, i) => Prepare(query, $"query {i}")).ToArray();
        _lock.EnterReadLock();
        try
        {
            if (_views.Count == 0 || neighborCount == 0)
            {
                return SearchImages(prepared, neighborCount, include);
            }

            var shortlists = SearchImages(prepared, Math.Max(ViewShortlistMinimum, neighborCount * ViewShortlistPerNeighbor), include);
            return Measure switch
            {
                DistanceMeasure.SquaredL2 => BestPerImage<SquaredL2Scorer>(prepared, shortlists, neighborCount),
                DistanceMeasure.L1 => BestPerImage<L1Scorer>(prepared, shortlists, neighborCount),
                DistanceMeasure.Cosine => BestPerImage<CosineScorer>(prepared, shortlists, neighborCount),
                DistanceMeasure.DotProduct => BestPerImage<DotProductScorer>(prepared, shortlists, neighborCount),
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
            CompactJournal();
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
        if (ImageViews.IsView(id))
        {
            _views.Set(id, vector);
            return;
        }

        if (!_rowOfId.TryGetValue(id, out var row))
        {
            row = _count;
            EnsureCapacity(_count + 1, Dimensions, ref _slab, ref _norms, ref _idOfRow);
            _rowOfId[id] = row;
            _idOfRow[row] = id;
            _count++;
        }

        var target = _slab.AsSpan(row * Dimensions, Dimensions);
        vector.CopyTo(target);
        _norms[row] = TensorPrimitives.Norm<float>(target);
        _quantized?.SetRow(row, id, target);
        if (!_filterDeferred)
        {
            _filter?.SetRow(row, target);
        }
    }

    private bool ApplyRemove(string id)
    {
        if (ImageViews.IsView(id))
        {
            return _views.Remove(id);
        }

        if (!_rowOfId.Remove(id, out var row))
        {
            return false;
        }

        var last = _count - 1;
        _quantized?.MoveLastInto(row);
        if (!_filterDeferred)
        {
            _filter?.MoveLastInto(row);
        }

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

    /// <summary>Grows a dense slab of rows (and their norms and ids) to hold <paramref name="rows"/>, by doubling.</summary>
    internal static void EnsureCapacity(int rows, int dimensions, ref float[] slab, ref float[] norms, ref string[] idOfRow)
    {
        if (rows <= idOfRow.Length)
        {
            return;
        }

        var capacity = Math.Max(rows, idOfRow.Length * 2);
        Array.Resize(ref slab, capacity * dimensions);
        Array.Resize(ref norms, capacity);
        Array.Resize(ref idOfRow, capacity);
    }

    private void CompactIfDue()
    {
        if (_journal is not null && _journal.LogLength > Math.Max(CompactionThresholdBytes, (long)(_count + _views.Count) * Dimensions * sizeof(float)))
        {
            CompactJournal();
        }
    }

    /// <summary>The snapshot holds the image rows, then the views.</summary>
    private void CompactJournal() =>
        _journal?.Compact(
            _count + _views.Count,
            row => row < _count ? _idOfRow[row] : _views.IdOfRow(row - _count),
            row => row < _count ? _slab.AsMemory(row * Dimensions, Dimensions) : _views.VectorOfRow(row - _count));

    /// <summary>The search over the images' own vectors (views aside); the caller holds the read lock.</summary>
    private IReadOnlyList<VectorMatch>[] SearchImages(float[][] prepared, int neighborCount, Func<string, bool>? include)
    {
        if (include is not null)
        {
            // The int8 paths bound or rank every row; a subset is scanned in float32, which is exact.
            return Measure switch
            {
                DistanceMeasure.SquaredL2 => SearchAll<SquaredL2Scorer>(prepared, neighborCount, include),
                DistanceMeasure.L1 => SearchAll<L1Scorer>(prepared, neighborCount, include),
                DistanceMeasure.Cosine => SearchAll<CosineScorer>(prepared, neighborCount, include),
                DistanceMeasure.DotProduct => SearchAll<DotProductScorer>(prepared, neighborCount, include),
                _ => throw new InvalidOperationException($"Unknown distance measure {Measure}."),
            };
        }

        if (_quantized is not null)
        {
            return SearchQuantized(prepared, neighborCount);
        }

        if (_filter is not null)
        {
            return Measure == DistanceMeasure.DotProduct
                ? SearchFiltered<DotProductScorer>(prepared, neighborCount)
                : SearchFiltered<CosineScorer>(prepared, neighborCount);
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

    /// <summary>
    /// Each query's shortlisted images, each at the best of its own distance and its views' by the index's measure,
    /// the <paramref name="neighborCount"/> nearest kept, ordered as any search (distance, then ordinal id).
    /// </summary>
    private IReadOnlyList<VectorMatch>[] BestPerImage<TScorer>(float[][] queries, IReadOnlyList<VectorMatch>[] shortlists, int neighborCount)
        where TScorer : struct, IDistanceScorer
    {
        var scratch = new float[Dimensions];
        var results = new IReadOnlyList<VectorMatch>[queries.Length];
        for (var q = 0; q < queries.Length; q++)
        {
            var queryNorm = TensorPrimitives.Norm<float>(queries[q]);
            results[q] = shortlists[q]
                .Select(match => (Score: _views.BestScore<TScorer>(match.Id, TScorer.ScoreOf(match.Distance), queries[q], queryNorm, scratch), match.Id))
                .OrderBy(item => item.Score)
                .ThenBy(item => item.Id, StringComparer.Ordinal)
                .Take(neighborCount)
                .Select(item => new VectorMatch(item.Id, TScorer.Reported(item.Score)))
                .ToArray();
        }

        return results;
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

    private IReadOnlyList<VectorMatch>[] SearchAll<TScorer>(float[][] queries, int neighborCount, Func<string, bool>? include = null)
        where TScorer : struct, IDistanceScorer
    {
        var k = Math.Min(neighborCount, _count);
        if (k == 0 || queries.Length == 0)
        {
            return queries.Select(_ => (IReadOnlyList<VectorMatch>)[]).ToArray();
        }

        var queryNorms = queries.Select(query => TensorPrimitives.Norm<float>(query)).ToArray();
        var partitions = Partitions(queries.Length);
        var rowsPerPartition = (_count + partitions - 1) / partitions;
        var collected = new TopKCollector[partitions][];

        void ScanPartition(int partition)
        {
            var collectors = new TopKCollector[queries.Length];
            for (var q = 0; q < queries.Length; q++)
            {
                collectors[q] = new TopKCollector(k, _idOfRow);
            }

            var scratch = new float[Dimensions];
            var first = partition * rowsPerPartition;
            var end = Math.Min(_count, first + rowsPerPartition);
            ReadOnlySpan<float> slab = _slab;
            // Rows outer, queries inner: each row is read from memory once for the whole batch.
            for (var row = first; row < end; row++)
            {
                if (include is not null && !include(_idOfRow[row]))
                {
                    continue;
                }

                var vector = slab.Slice(row * Dimensions, Dimensions);
                var rowNorm = _norms[row];
                for (var q = 0; q < queries.Length; q++)
                {
                    var score = TScorer.Score(queries[q], queryNorms[q], vector, rowNorm, scratch);
                    // Equal to the threshold may still win on id; the collector decides.
                    if (score <= collectors[q].Threshold)
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

            results[q] = Matches<TScorer>(merged);
        }

        return results;
    }

    /// <summary>
    /// <see cref="SearchAll{TScorer}"/>'s answer without reading most float32 rows: an int8 scan bounds every row's
    /// score from below, the rows nearest by the int8 estimate are scored in float32 to set the k-th best score, and
    /// then every other row whose bound does not exceed it, lowest bound first, until the next bound does. A row left
    /// out has a score above the k-th best among rows scored, so k rows that were scored rank before it and it is
    /// not in the answer; the rows scored are scored by the scan's own routine and the collector orders ties by id,
    /// so scores and order match the scan's bit for bit.
    /// </summary>
    private IReadOnlyList<VectorMatch>[] SearchFiltered<TScorer>(float[][] queries, int neighborCount)
        where TScorer : struct, IInnerProductScorer
    {
        var k = Math.Min(neighborCount, _count);
        if (k == 0 || queries.Length == 0)
        {
            return SearchAll<TScorer>(queries, neighborCount);
        }

        var filterQueries = k < _count ? queries.Select(query => _filter!.Prepare(query)).OfType<ExactSearchFilter.Query>().ToArray() : [];
        if (filterQueries.Length < queries.Length)
        {
            // Every row is an answer, or a query is too long to bound: nothing to filter.
            for (var q = 0; q < queries.Length; q++)
            {
                Telemetry.IndexRowsScored.Record(_count);
            }

            return SearchAll<TScorer>(queries, neighborCount);
        }

        var queryNorms = queries.Select(query => TensorPrimitives.Norm<float>(query)).ToArray();
        var results = new IReadOnlyList<VectorMatch>[queries.Length];
        var lowerBounds = new float[Math.Min(FilterQueryBlock, queries.Length)][];
        for (var q = 0; q < lowerBounds.Length; q++)
        {
            lowerBounds[q] = ArrayPool<float>.Shared.Rent(_count);
        }

        try
        {
            for (var start = 0; start < queries.Length; start += FilterQueryBlock)
            {
                var block = Math.Min(FilterQueryBlock, queries.Length - start);
                var blockQueries = filterQueries.AsSpan(start, block).ToArray();
                var blockNorms = queryNorms.AsSpan(start, block).ToArray();
                var partitions = Partitions(block);
                var rowsPerPartition = (_count + partitions - 1) / partitions;
                var collected = new TopKCollector[partitions][];

                void ScanPartition(int partition)
                {
                    var nearestByEstimate = new TopKCollector[block];
                    for (var q = 0; q < block; q++)
                    {
                        nearestByEstimate[q] = new TopKCollector(k);
                    }

                    var first = partition * rowsPerPartition;
                    _filter!.Scan<TScorer>(blockQueries, blockNorms, _norms, first, Math.Min(_count, first + rowsPerPartition), lowerBounds, nearestByEstimate);
                    collected[partition] = nearestByEstimate;
                }

                if (partitions == 1)
                {
                    ScanPartition(0);
                }
                else
                {
                    Parallel.For(0, partitions, ScanPartition);
                }

                for (var q = 0; q < block; q++)
                {
                    var nearestByEstimate = collected[0][q];
                    for (var partition = 1; partition < partitions; partition++)
                    {
                        nearestByEstimate.AddFrom(collected[partition][q]);
                    }

                    results[start + q] = ScoreWithinBounds<TScorer>(queries[start + q], blockNorms[q], lowerBounds[q], nearestByEstimate, k);
                }
            }
        }
        finally
        {
            foreach (var buffer in lowerBounds)
            {
                ArrayPool<float>.Shared.Return(buffer);
            }
        }

        return results;
    }

    private IReadOnlyList<VectorMatch> ScoreWithinBounds<TScorer>(
        float[] query, float queryNorm, float[] lowerBounds, TopKCollector nearestByEstimate, int k)
        where TScorer : struct, IInnerProductScorer
    {
        var nearest = new TopKCollector(k, _idOfRow);
        var scored = new HashSet<int>();
        foreach (var (_, row) in nearestByEstimate.Items())
        {
            nearest.Add(Score(row), row);
            scored.Add(row);
        }

        // Rows that may still beat the k-th best score; NaN (no bound) counts as maybe. Usually a few dozen:
        // counted first, so their arrays are as small as they are.
        var threshold = nearest.Threshold;
        var candidates = 0;
        for (var row = 0; row < _count; row++)
        {
            candidates += lowerBounds[row] > threshold ? 0 : 1;
        }

        var candidateBounds = new float[candidates];
        var candidateRows = new int[candidates];
        candidates = 0;
        for (var row = 0; row < _count; row++)
        {
            if (!(lowerBounds[row] > threshold) && !scored.Contains(row))
            {
                candidateBounds[candidates] = lowerBounds[row];
                candidateRows[candidates++] = row;
            }
        }

        // Lowest bound first (NaN sorts first): the threshold tightens soonest and the loop stops at the first
        // bound above it, every later one being higher still.
        Array.Sort(candidateBounds, candidateRows, 0, candidates);
        var next = 0;
        for (; next < candidates && !(candidateBounds[next] > nearest.Threshold); next++)
        {
            nearest.Add(Score(candidateRows[next]), candidateRows[next]);
        }

        Telemetry.IndexRowsScored.Record(scored.Count + next);
        return Matches<TScorer>(nearest);

        // Exactly the scan's call, so the score is the scan's to the bit.
        float Score(int row) => TScorer.Score(query, queryNorm, _slab.AsSpan(row * Dimensions, Dimensions), _norms[row], []);
    }

    /// <summary>How many parts the rows are split into for a batch of <paramref name="queries"/>.</summary>
    private int Partitions(int queries)
    {
        var work = (long)_count * Dimensions * queries;
        return work < ParallelWorkThreshold || Environment.ProcessorCount == 1
            ? 1
            : Math.Clamp(_count / MinRowsPerPartition, 1, Environment.ProcessorCount * 4);
    }

    private IReadOnlyList<VectorMatch> Matches<TScorer>(TopKCollector nearest)
        where TScorer : struct, IDistanceScorer =>
        nearest.Items()
            .Select(item => (item.Score, Id: _idOfRow[item.Row]))
            .OrderBy(item => item.Score)
            .ThenBy(item => item.Id, StringComparer.Ordinal)
            .Select(item => new VectorMatch(item.Id, TScorer.Reported(item.Score)))
            .ToArray();

    [LoggerMessage(Level = LogLevel.Warning, Message = "The rebuilt vector index could not be saved ({Message}); it is rebuilt again at the next start")]
    private static partial void LogRebuiltIndexNotSaved(ILogger logger, string message);
}
