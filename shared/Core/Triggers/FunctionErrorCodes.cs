namespace ReverseImageSearch.Core.Triggers;

/// <summary>Wire names and HTTP statuses of <see cref="FunctionErrorCode"/> (firebase-functions errorCodeMap).</summary>
public static class FunctionErrorCodes
{
    public static string WireName(this FunctionErrorCode code) => code switch
    {
        FunctionErrorCode.Cancelled => "CANCELLED",
        FunctionErrorCode.Unknown => "UNKNOWN",
        FunctionErrorCode.InvalidArgument => "INVALID_ARGUMENT",
        FunctionErrorCode.DeadlineExceeded => "DEADLINE_EXCEEDED",
        FunctionErrorCode.NotFound => "NOT_FOUND",
        FunctionErrorCode.AlreadyExists => "ALREADY_EXISTS",
        FunctionErrorCode.PermissionDenied => "PERMISSION_DENIED",
        FunctionErrorCode.ResourceExhausted => "RESOURCE_EXHAUSTED",
        FunctionErrorCode.FailedPrecondition => "FAILED_PRECONDITION",
        FunctionErrorCode.Aborted => "ABORTED",
        FunctionErrorCode.OutOfRange => "OUT_OF_RANGE",
        FunctionErrorCode.Unimplemented => "UNIMPLEMENTED",
        FunctionErrorCode.Internal => "INTERNAL",
        FunctionErrorCode.Unavailable => "UNAVAILABLE",
        FunctionErrorCode.DataLoss => "DATA_LOSS",
        FunctionErrorCode.Unauthenticated => "UNAUTHENTICATED",
        _ => throw new ArgumentOutOfRangeException(nameof(code), code, null),
    };

    public static int HttpStatus(this FunctionErrorCode code) => code switch
    {
        FunctionErrorCode.Cancelled => 499,
        FunctionErrorCode.InvalidArgument or FunctionErrorCode.FailedPrecondition or FunctionErrorCode.OutOfRange => 400,
        FunctionErrorCode.DeadlineExceeded => 504,
        FunctionErrorCode.NotFound => 404,
        FunctionErrorCode.AlreadyExists or FunctionErrorCode.Aborted => 409,
        FunctionErrorCode.PermissionDenied => 403,
        FunctionErrorCode.Unauthenticated => 401,
        FunctionErrorCode.ResourceExhausted => 429,
        FunctionErrorCode.Unimplemented => 501,
        FunctionErrorCode.Unavailable => 503,
        FunctionErrorCode.Unknown or FunctionErrorCode.Internal or FunctionErrorCode.DataLoss => 500,
        _ => throw new ArgumentOutOfRangeException(nameof(code), code, null),
    };
}
