using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Local.Storage;

namespace ReverseImageSearch.Local.VectorIndex;

/// <summary>
/// Durability of one vector index: a snapshot file plus an append-only log of the upsert and remove
/// batches since. Every batch is flushed to disk before it is acknowledged; a record torn by a crash
/// fails its checksum and is dropped (it was never acknowledged). Compaction writes a new snapshot
/// atomically and then empties the log; a crash between the two only means the log is replayed over a
/// snapshot that already contains it, which yields the same state because the last operation on each id wins.
/// </summary>
internal sealed partial class VectorIndexJournal : IDisposable
{
    private const string SnapshotFileName = "vectors.snapshot";
    private const string LogFileName = "vectors.log";
    private const ulong SnapshotMagicV1 = 0x3158444956534952; // "RISVIDX1" little-endian: no checksum
    private const ulong SnapshotMagic = 0x3258444956534952; // "RISVIDX2": CRC-32 of everything before it at the end
    private const int MaxIdBytes = 1 << 16;
    private const byte UpsertRecord = 1;
    private const byte RemoveRecord = 2;
    private const int RecordHeaderSize = 8; // payload length + CRC

    private readonly string _directory;
    private readonly int _dimensions;
    private readonly ILogger _logger;
    private FileStream? _log;
    private long? _loadedLength;

    public VectorIndexJournal(string directory, int dimensions, ILogger logger)
    {
        _directory = directory;
        _dimensions = dimensions;
        _logger = logger;
        Directory.CreateDirectory(directory);
    }

    public long LogLength => _log?.Length ?? _loadedLength ?? 0;

    /// <summary>
    /// Replays the snapshot and then the log into the callbacks; the log is opened for appending at the first write,
    /// so loading only reads (a read-only data folder can be queried). A damaged
    /// snapshot (checksum or structure) is replaced by <paramref name="rebuildBase"/>, which supplies the rows
    /// the snapshot should have held, and the log is replayed over them; without it, loading fails naming the file.
    /// </summary>
    /// <returns>True when the snapshot was damaged and the base was rebuilt instead: compact to write a good one.</returns>
    public bool Load(Action<string, ReadOnlySpan<float>> upsert, Action<string> remove, Action? rebuildBase = null)
    {
        var snapshotPath = Path.Combine(_directory, SnapshotFileName);
        var damage = File.Exists(snapshotPath) ? VerifySnapshot(snapshotPath) : null;
        if (damage is null)
        {
            LoadSnapshot(upsert);
        }
        else if (rebuildBase is null)
        {
            throw new InvalidDataException($"The vector index snapshot {snapshotPath} is damaged: {damage}.");
        }
        else
        {
            LogRebuildingDamagedSnapshot(_logger, snapshotPath, damage, Path.Combine(_directory, LogFileName));
            TryKeepCopy(snapshotPath, snapshotPath + ".damaged");
            rebuildBase();
        }

        _loadedLength = ReplayLog(upsert, remove);
        return damage is not null;
    }

    public void AppendUpserts(IReadOnlyList<(string Id, float[] Vector)> batch)
    {
        var size = 1 + 4 + batch.Sum(entry => 4 + Encoding.UTF8.GetByteCount(entry.Id) + (_dimensions * sizeof(float)));
        var payload = new byte[size];
        var writer = new SpanWriter(payload);
        writer.WriteByte(UpsertRecord);
        writer.WriteInt32(batch.Count);
        foreach (var (id, vector) in batch)
        {
            writer.WriteString(id);
            writer.WriteFloats(vector);
        }

        Append(payload);
    }

    public void AppendRemoves(IReadOnlyList<string> ids)
    {
        var payload = new byte[1 + 4 + ids.Sum(id => 4 + Encoding.UTF8.GetByteCount(id))];
        var writer = new SpanWriter(payload);
        writer.WriteByte(RemoveRecord);
        writer.WriteInt32(ids.Count);
        foreach (var id in ids)
        {
            writer.WriteString(id);
        }

        Append(payload);
    }

    /// <summary>Replaces the snapshot with rows 0 to <paramref name="count"/> - 1 and empties the log.</summary>
    public void Compact(int count, Func<int, string> idOfRow, Func<int, ReadOnlyMemory<float>> vectorOfRow)
    {
        var path = Path.Combine(_directory, SnapshotFileName);
        var tempPath = AtomicFile.TempPathFor(path);
        using (var stream = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
        {
            Span<byte> header = stackalloc byte[16];
            BinaryPrimitives.WriteUInt64LittleEndian(header, SnapshotMagic);
            BinaryPrimitives.WriteInt32LittleEndian(header[8..], _dimensions);
            BinaryPrimitives.WriteInt32LittleEndian(header[12..], count);
            stream.Write(header);
            var crc = Crc32.Compute(header);
            Span<byte> length = stackalloc byte[4];
            for (var row = 0; row < count; row++)
            {
                var id = Encoding.UTF8.GetBytes(idOfRow(row));
                var vector = MemoryMarshal.AsBytes(vectorOfRow(row).Span);
                BinaryPrimitives.WriteInt32LittleEndian(length, id.Length);
                stream.Write(length);
                stream.Write(id);
                stream.Write(vector);
                crc = Crc32.Compute(vector, Crc32.Compute(id, Crc32.Compute(length, crc)));
            }

            BinaryPrimitives.WriteUInt32LittleEndian(length, crc);
            stream.Write(length);
            stream.Flush(flushToDisk: true);
        }

        File.Move(tempPath, path, overwrite: true);
        var log = OpenLog();
        log.SetLength(0);
        log.Flush(flushToDisk: true);
        LogCompacted(_logger, count, path);
    }

    public void Dispose() => _log?.Dispose();

    /// <summary>The log, opened for writing at the first write after loading, without an incomplete record at its end.</summary>
    private FileStream OpenLog()
    {
        if (_log is not null)
        {
            return _log;
        }

        var validLength = _loadedLength ?? throw new InvalidOperationException("The journal is not loaded.");
        var log = new FileStream(Path.Combine(_directory, LogFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        if (log.Length != validLength)
        {
            LogDroppingIncompleteRecord(_logger, log.Length - validLength, log.Name);
            log.SetLength(validLength);
            log.Flush(flushToDisk: true);
        }

        log.Seek(0, SeekOrigin.End);
        _log = log;
        return log;
    }

    private void Append(byte[] payload)
    {
        var log = OpenLog();
        Span<byte> header = stackalloc byte[RecordHeaderSize];
        BinaryPrimitives.WriteInt32LittleEndian(header, payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], Crc32.Compute(payload));
        var start = log.Position;
        try
        {
            log.Write(header);
            log.Write(payload);
            log.Flush(flushToDisk: true);
        }
        catch
        {
            // Keep the log free of a half-written record so later appends stay readable.
            log.SetLength(start);
            log.Position = start;
            throw;
        }
    }

    private void LoadSnapshot(Action<string, ReadOnlySpan<float>> upsert)
    {
        var path = Path.Combine(_directory, SnapshotFileName);
        if (!File.Exists(path))
        {
            return;
        }

        // Verified before this: only the rows are read.
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        Span<byte> header = stackalloc byte[16];
        stream.ReadExactly(header);
        var count = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
        var vector = new float[_dimensions];
        Span<byte> length = stackalloc byte[4];
        for (var row = 0; row < count; row++)
        {
            stream.ReadExactly(length);
            var id = new byte[BinaryPrimitives.ReadInt32LittleEndian(length)];
            stream.ReadExactly(id);
            stream.ReadExactly(MemoryMarshal.AsBytes(vector.AsSpan()));
            upsert(Encoding.UTF8.GetString(id), vector);
        }
    }

    /// <summary>Checks the snapshot's structure and checksum without applying it; null when it is sound, otherwise what is wrong.</summary>
    private string? VerifySnapshot(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        var header = new byte[16];
        if (stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length)
        {
            return "shorter than its header";
        }

        var magic = BinaryPrimitives.ReadUInt64LittleEndian(header);
        if (magic != SnapshotMagic && magic != SnapshotMagicV1)
        {
            return "not a vector index snapshot";
        }

        var dimensions = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(8));
        if (dimensions != _dimensions)
        {
            return $"it holds {dimensions}-dimensional vectors, not {_dimensions}";
        }

        var count = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(12));
        var vectorBytes = _dimensions * sizeof(float);
        var trailer = magic == SnapshotMagic ? 4 : 0;
        if (count < 0 || (long)count * (4 + vectorBytes) > stream.Length - header.Length - trailer)
        {
            return $"its row count {count} does not fit its length";
        }

        var crc = Crc32.Compute(header);
        var length = new byte[4];
        var row = new byte[MaxIdBytes + vectorBytes];
        for (var i = 0; i < count; i++)
        {
            if (stream.ReadAtLeast(length, 4, throwOnEndOfStream: false) < 4)
            {
                return $"row {i} is cut off";
            }

            var idLength = BinaryPrimitives.ReadInt32LittleEndian(length);
            if (idLength is <= 0 or > MaxIdBytes || idLength + vectorBytes > stream.Length - stream.Position - trailer)
            {
                return $"row {i} has an impossible id length {idLength}";
            }

            var rowBytes = row.AsSpan(0, idLength + vectorBytes);
            stream.ReadExactly(rowBytes);
            crc = Crc32.Compute(rowBytes, Crc32.Compute(length, crc));
        }

        if (trailer == 0)
        {
            return stream.Position == stream.Length ? null : "it has bytes after its last row";
        }

        if (stream.ReadAtLeast(length, 4, throwOnEndOfStream: false) < 4 || stream.Position != stream.Length)
        {
            return "its checksum is missing or not at its end";
        }

        return BinaryPrimitives.ReadUInt32LittleEndian(length) == crc ? null : "its checksum does not match its contents";
    }

    private void TryKeepCopy(string path, string copyPath)
    {
        try
        {
            File.Copy(path, copyPath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogCouldNotKeepCopy(_logger, path, e.Message);
        }
    }

    /// <returns>The length of the log's valid prefix.</returns>
    private long ReplayLog(Action<string, ReadOnlySpan<float>> upsert, Action<string> remove)
    {
        var path = Path.Combine(_directory, LogFileName);
        if (!File.Exists(path))
        {
            return 0;
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        var header = new byte[RecordHeaderSize];
        long valid = 0;
        while (true)
        {
            if (stream.ReadAtLeast(header, RecordHeaderSize, throwOnEndOfStream: false) < RecordHeaderSize)
            {
                return valid;
            }

            var payloadLength = BinaryPrimitives.ReadInt32LittleEndian(header);
            if (payloadLength <= 0 || payloadLength > stream.Length - stream.Position)
            {
                return valid;
            }

            var payload = new byte[payloadLength];
            stream.ReadExactly(payload);
            if (Crc32.Compute(payload) != BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4)))
            {
                return valid;
            }

            ApplyRecord(payload, upsert, remove);
            valid = stream.Position;
        }
    }

    private void ApplyRecord(ReadOnlySpan<byte> payload, Action<string, ReadOnlySpan<float>> upsert, Action<string> remove)
    {
        var reader = new SpanReader(payload);
        var kind = reader.ReadByte();
        var count = reader.ReadInt32();
        for (var i = 0; i < count; i++)
        {
            var id = reader.ReadString();
            if (kind == UpsertRecord)
            {
                upsert(id, reader.ReadFloats(_dimensions));
            }
            else if (kind == RemoveRecord)
            {
                remove(id);
            }
            else
            {
                throw new InvalidDataException($"Unknown vector log record kind {kind}.");
            }
        }
    }

    private ref struct SpanWriter(Span<byte> buffer)
    {
        private readonly Span<byte> _buffer = buffer;
        private int _position;

        public void WriteByte(byte value) => _buffer[_position++] = value;

        public void WriteInt32(int value)
        {
            BinaryPrimitives.WriteInt32LittleEndian(_buffer[_position..], value);
            _position += 4;
        }

        public void WriteString(string value)
        {
            var length = Encoding.UTF8.GetBytes(value, _buffer[(_position + 4)..]);
            WriteInt32(length);
            _position += length;
        }

        public void WriteFloats(ReadOnlySpan<float> values)
        {
            var bytes = MemoryMarshal.AsBytes(values);
            bytes.CopyTo(_buffer[_position..]);
            _position += bytes.Length;
        }
    }

    private ref struct SpanReader(ReadOnlySpan<byte> buffer)
    {
        private readonly ReadOnlySpan<byte> _buffer = buffer;
        private int _position;

        public byte ReadByte() => _buffer[_position++];

        public int ReadInt32()
        {
            var value = BinaryPrimitives.ReadInt32LittleEndian(_buffer[_position..]);
            _position += 4;
            return value;
        }

        public string ReadString()
        {
            var length = ReadInt32();
            var value = Encoding.UTF8.GetString(_buffer.Slice(_position, length));
            _position += length;
            return value;
        }

        public ReadOnlySpan<float> ReadFloats(int count)
        {
            var bytes = _buffer.Slice(_position, count * sizeof(float));
            _position += bytes.Length;
            return MemoryMarshal.Cast<byte, float>(bytes);
        }
    }

    [LoggerMessage(Level = LogLevel.Error,
        Message = "The vector index snapshot {Snapshot} is damaged ({Damage}); rebuilding the index from its datapoint files and the journal {Log}")]
    private static partial void LogRebuildingDamagedSnapshot(ILogger logger, string snapshot, string damage, string log);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Compacted {Count} vector(s) into {Snapshot}")]
    private static partial void LogCompacted(ILogger logger, int count, string snapshot);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Dropping {Bytes} byte(s) of an incomplete record at the end of {Log}")]
    private static partial void LogDroppingIncompleteRecord(ILogger logger, long bytes, string log);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not keep a copy of the damaged {Snapshot}: {Message}")]
    private static partial void LogCouldNotKeepCopy(ILogger logger, string snapshot, string message);
}
