using System.Text.Json;
using ReverseImageSearch.Core.Ports;

namespace ReverseImageSearch.Core.Triggers;

// Each function implements exactly one of these. The host (Cloud Run on Google Cloud, or the local
// emulator) decodes its trigger into the matching request type and maps the outcome back:
// returning acknowledges; a FunctionException maps to its status; any other exception means
// "failed, deliver again" for tasks and events and INTERNAL for callables.

/// <summary>A Firebase callable function (https.onCall).</summary>
public interface ICallableFunction
{
    /// <summary>The call's result, as a typed value the host serialises (camelCase) as the response's "result".</summary>
    Task<object?> HandleAsync(CallableRequest request, CancellationToken cancellationToken);
}

/// <summary>A task-queue function (Cloud Tasks HTTP target).</summary>
public interface ITaskFunction
{
    Task HandleAsync(TaskDelivery task, CancellationToken cancellationToken);
}

/// <summary>A function triggered by Cloud Storage object events.</summary>
public interface IStorageFunction
{
    /// <summary>The event type this function is deployed for.</summary>
    StorageEventKind Kind { get; }

    Task HandleAsync(StorageObjectEvent storageEvent, CancellationToken cancellationToken);
}

/// <summary>A function triggered by updates of one Firestore document.</summary>
public interface IDocumentFunction
{
    Task HandleAsync(DocumentChange change, CancellationToken cancellationToken);
}

/// <summary>A function triggered by Cloud Audit Log entries.</summary>
public interface IAuditLogFunction
{
    /// <summary>The methodName filter the trigger is deployed with, for example
    /// google.cloud.aiplatform.v1.IndexService.CreateIndex.</summary>
    string MethodName { get; }

    Task HandleAsync(AuditLogEvent auditEvent, CancellationToken cancellationToken);
}

/// <param name="Data">The request's "data" value, readable until the call returns.</param>
/// <param name="Auth">The verified caller, or null when the request carried no ID token.</param>
public sealed record CallableRequest(JsonElement Data, CallerIdentity? Auth);

/// <param name="Uid">The Firebase user id (the token's sub).</param>
/// <param name="SignInProvider">firebase.sign_in_provider, for example anonymous or password.</param>
public sealed record CallerIdentity(string Uid, string? SignInProvider);

/// <param name="Data">The task's "data" payload, readable until the call returns.</param>
/// <param name="TaskName">The queue's name for this task, the same on every delivery of it; null when unknown.</param>
/// <param name="RetryCount">0 on the first attempt.</param>
public sealed record TaskDelivery(JsonElement Data, string? TaskName, int RetryCount);

public enum StorageEventKind
{
    Finalized,
    Deleted,
}

public sealed record StorageObjectEvent(
    StorageEventKind Kind,
    string Bucket,
    string Name,
    string? ContentType,
    long Size,
    string? Md5Hash,
    long Generation,
    long Metageneration);

/// <summary>A document write: the document before and after (null when absent).</summary>
public sealed record DocumentChange(string Path, DocumentSnapshot? Before, DocumentSnapshot? After);

/// <param name="OperationId">operation.id: the long-running operation's name.</param>
/// <param name="Last">operation.last: the entry written when the operation finished.</param>
public sealed record AuditLogEvent(
    string ServiceName,
    string MethodName,
    string ResourceName,
    string? OperationId,
    bool First,
    bool Last);

/// <summary>Canonical error codes of callable functions (firebase-functions FunctionsErrorCode).</summary>
public enum FunctionErrorCode
{
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

/// <summary>An error the caller should see as it is (HttpsError in firebase-functions).</summary>
public sealed class FunctionException(FunctionErrorCode code, string message, object? details = null) : Exception(message)
{
    public FunctionErrorCode Code { get; } = code;

    public object? Details { get; } = details;
}
