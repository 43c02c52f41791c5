using System.Runtime.InteropServices;
using SkiaSharp;

namespace ReverseImageSearch.Embedding;

/// <summary>
/// Lends encoded bytes to Skia without copying them when they live in a managed array (the usual case):
/// the array stays pinned until this is disposed, which must happen after every codec reading it.
/// </summary>
internal sealed class PinnedSkData : IDisposable
{
    private GCHandle _pin;

    private PinnedSkData(SKData data, GCHandle pin)
    {
        Data = data;
        _pin = pin;
    }

    public SKData Data { get; }

    public static PinnedSkData Create(ReadOnlyMemory<byte> bytes)
    {
        if (!MemoryMarshal.TryGetArray(bytes, out var segment) || segment.Array is null)
        {
            return new PinnedSkData(SKData.CreateCopy(bytes.Span), default);
        }

        var pin = GCHandle.Alloc(segment.Array, GCHandleType.Pinned);
        var address = Marshal.UnsafeAddrOfPinnedArrayElement(segment.Array, segment.Offset);
        return new PinnedSkData(SKData.Create(address, segment.Count), pin);
    }

    public void Dispose()
    {
        Data.Dispose();
        if (_pin.IsAllocated)
        {
            _pin.Free();
        }
    }
}
