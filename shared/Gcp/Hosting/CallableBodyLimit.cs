using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>
/// How large a callable request may be, derived from MAX_IMAGE_BYTES: one image of that size in base64, plus
/// <see cref="JsonAllowance"/> for a data URL's prefix and the JSON around it (several images in one call share it).
/// The server's own limit (Kestrel's 30,000,000 bytes) is below a legal 32 MiB image, so the callable sets its own
/// per request. A larger body is answered in the callable's error shape; bodies up to twice the limit are read and
/// discarded first, so that a caller still sending receives that answer rather than a broken connection.
/// Bodies in flight share one <see cref="MemoryBudget"/> of the limit's size (a body is held several times over while
/// its JSON and base64 are decoded): one call of the largest size at a time, or several smaller ones together.
/// </summary>
public sealed class CallableBodyLimit
{
    public const int JsonAllowance = 64 * 1024;

    private readonly long _maxImageBytes;
    private readonly MemoryBudget _bodiesInFlight;

    public CallableBodyLimit(long maxImageBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxImageBytes);
        _maxImageBytes = maxImageBytes;
        MaxBodyBytes = ((maxImageBytes + 2) / 3 * 4) + JsonAllowance;
        _bodiesInFlight = new MemoryBudget(MaxBodyBytes);
    }

    public long MaxBodyBytes { get; }

    /// <summary>Waits until the request's body fits beside those in flight; hold the lease until the answer is written.</summary>
    internal Task<IDisposable> AdmitAsync(HttpContext context) =>
        _bodiesInFlight.AcquireAsync(context.Request.ContentLength ?? MaxBodyBytes, context.RequestAborted);

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
