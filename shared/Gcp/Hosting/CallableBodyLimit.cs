using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>
/// How large a callable request may be, derived from MAX_IMAGE_BYTES: one image of that size in base64, plus
/// <see cref="JsonAllowance"/> for a data URL's prefix and the JSON around it (several images in one call share it).
/// The server's own limit (Kestrel's 30,000,000 bytes) is below a legal 32 MiB image, so the callable sets its own
/// per request. A larger body is answered in the callable's error shape; bodies up to twice the limit are read and
/// discarded first, so that a caller still sending receives that answer rather than a broken connection.
/// </summary>
public sealed class CallableBodyLimit
{
    public const int JsonAllowance = 64 * 1024;

    private readonly long _maxImageBytes;

    public CallableBodyLimit(long maxImageBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxImageBytes);
        _maxImageBytes = maxImageBytes;
        MaxBodyBytes = ((maxImageBytes + 2) / 3 * 4) + JsonAllowance;
    }

    public long MaxBodyBytes { get; }

    /// <summary>Sets the request's limit; when its declared length is over it, answers and returns true.</summary>
    internal async Task<bool> RefuseOversizeAsync(HttpContext context)
    {
        var declared = context.Request.ContentLength;
        var sizeLimit = context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature ? feature : null;
        if (declared is null || declared <= MaxBodyBytes)
        {
            sizeLimit?.MaxRequestBodySize = MaxBodyBytes;
            return false;
        }

        if (declared <= 2 * MaxBodyBytes)
        {
            sizeLimit?.MaxRequestBodySize = declared;
            await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
        }

        await WriteTooLargeAsync(context.Response);
        return true;
    }

    /// <summary>The answer to a body over the limit, also when it is only found out while reading (no declared length).</summary>
    internal Task WriteTooLargeAsync(HttpResponse response) =>
        FunctionErrorResponses.WriteErrorAsync(response, FunctionErrorCode.InvalidArgument,
            $"The request is larger than {MaxBodyBytes} bytes, the most one call may carry: an image of MAX_IMAGE_BYTES ({_maxImageBytes}) in base64 and its JSON.",
            details: null);
}
