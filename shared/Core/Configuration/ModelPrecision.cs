namespace ReverseImageSearch.Core.Configuration;

/// <summary>MODEL_PRECISION: which bundled model embeds. Int8 runs about twice as fast on CPUs with VNNI and gives
/// slightly different vectors, so an index must be built and queried with the same one.</summary>
public enum ModelPrecision
{
    Float32,
    Int8,
}
