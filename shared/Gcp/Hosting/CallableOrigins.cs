using System.Net;
using Microsoft.AspNetCore.Http;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>
/// Which web pages may call a callable from a browser (CORS). On Google Cloud any origin may, as firebase-functions'
/// default cors: true; a callable serving someone's own machine allows only pages served from that machine.
/// </summary>
public sealed class CallableOrigins
{
    private readonly HashSet<string>? _allowed;

    private CallableOrigins(HashSet<string>? allowed, string howToAllow)
    {
        _allowed = allowed;
        HowToAllow = howToAllow;
    }

    /// <summary>Every origin, reflected (the Firebase callable's behaviour on Google Cloud).</summary>
    public static CallableOrigins Any { get; } = new(allowed: null, howToAllow: "");

    /// <summary>What a refused caller is told about allowing its origin.</summary>
    public string HowToAllow { get; }

    /// <summary>
    /// Loopback pages (localhost, 127.0.0.0/8, [::1], any port), the server's own page when it is addressed by an IP
    /// literal (not by a DNS name, which another site could point at this machine), and <paramref name="extra"/>.
    /// </summary>
    public static CallableOrigins LocalPages(IEnumerable<string> extra, string howToAllow) =>
        new(extra.Select(Normalize).ToHashSet(StringComparer.Ordinal), howToAllow);

    /// <summary>Whether a browser page at <paramref name="origin"/> may call <paramref name="request"/>'s callable.</summary>
    public bool Allows(HttpRequest request, string origin)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_allowed is null || _allowed.Contains(Normalize(origin)))
        {
            return true;
        }

        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.AbsolutePath != "/")
        {
            return false;
        }

        if (uri.IsLoopback)
        {
            return true;
        }

        var ownOrigin = $"{request.Scheme}://{request.Host.Value}";
        return IPAddress.TryParse(uri.IdnHost, out _) && string.Equals(Normalize(origin), Normalize(ownOrigin), StringComparison.Ordinal);
    }

    private static string Normalize(string origin) => origin.TrimEnd('/').ToLowerInvariant();
}
