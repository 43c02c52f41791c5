namespace ReverseImageSearch.Local.VectorIndex;

/// <summary>CRC-32 (IEEE, reflected): detects a journal record torn by a crash mid-append and a damaged snapshot.</summary>
internal static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    /// <summary>The CRC of <paramref name="data"/>; pass the CRC of what came before to continue it (Compute(b, Compute(a)) is the CRC of a then b).</summary>
    public static uint Compute(ReadOnlySpan<byte> data, uint previous = 0)
    {
        var crc = ~previous;
        foreach (var b in data)
        {
            crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return ~crc;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (var i = 0u; i < 256; i++)
        {
            var value = i;
            for (var bit = 0; bit < 8; bit++)
            {
                value = (value & 1) != 0 ? 0xEDB88320u ^ (value >> 1) : value >> 1;
            }

            table[i] = value;
        }

        return table;
    }
}
