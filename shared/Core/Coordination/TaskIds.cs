using System.Security.Cryptography;
using System.Text;

namespace ReverseImageSearch.Core.Coordination;

/// <summary>De-duplication ids for enqueued tasks.</summary>
internal static class TaskIds
{
    /// <summary>
    /// A stable id derived from <paramref name="key"/>: the same key always gives the same id. Hashed because
    /// Cloud Tasks spreads hashed names better than sequential ones, and any key fits its character set.
    /// </summary>
    public static string Hashed(string prefix, string key) =>
        prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..32];
}
