using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ReverseImageSearch.Core.Configuration;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Gcp.Auth;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>
/// Serves a function's trigger protocol at a route, for every HTTP method (the protocol itself answers
/// methods it does not accept). FunctionHost maps one function at every path; a multi-function host
/// (the local emulator) can map each at its own route with the same protocols and error mapping.
/// </summary>
public static class FunctionEndpointRouteBuilderExtensions
{
    /// <summary>Every path, as Cloud Run does not promise which one requests arrive at.</summary>
    public const string AnyPath = "/{**path}";

    /// <summary>Maps <paramref name="function"/> with the protocol of the one trigger interface it implements.</summary>
    public static IEndpointConventionBuilder MapFunction(this IEndpointRouteBuilder endpoints, string pattern, object function)
    {
        ArgumentNullException.ThrowIfNull(function);
        return function switch
        {
            ICallableFunction callable => endpoints.MapCallableFunction(pattern, callable),
            ITaskFunction task => endpoints.MapTaskFunction(pattern, task),
            IStorageFunction storage => endpoints.MapStorageFunction(pattern, storage),
            IDocumentFunction document => endpoints.MapDocumentFunction(pattern, document),
            IAuditLogFunction auditLog => endpoints.MapAuditLogFunction(pattern, auditLog),
            _ => throw new ArgumentException($"{function.GetType().FullName} implements no function contract of ReverseImageSearch.Core.Triggers.", nameof(function)),
        };
    }

    /// <summary>
    /// The Firebase callable protocol; tokens are checked by <paramref name="authenticator"/>, or the registered
    /// <see cref="ICallerAuthenticator"/>; browser pages from <paramref name="origins"/> may call (default: any). The
    /// request size follows MAX_IMAGE_BYTES when <see cref="ExtensionOptions"/> are registered (<see cref="CallableBodyLimit"/>).
    /// With an <see cref="AppCheckVerifier"/> registered (ENFORCE_APP_CHECK), a call needs a valid App Check token.
    /// </summary>
    public static IEndpointConventionBuilder MapCallableFunction(
        this IEndpointRouteBuilder endpoints, string pattern, ICallableFunction function, ICallerAuthenticator? authenticator = null, CallableOrigins? origins = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(function);
        authenticator ??= endpoints.ServiceProvider.GetRequiredService<ICallerAuthenticator>();
        var bodyLimit = endpoints.ServiceProvider.GetService<ExtensionOptions>() is { } options ? new CallableBodyLimit(options.MaxImageBytes) : null;
        var protocol = new CallableProtocol(function, authenticator, origins ?? CallableOrigins.Any, bodyLimit, LoggerFor(endpoints, function),
            endpoints.ServiceProvider.GetService<AppCheckVerifier>());
        return endpoints.Map(pattern, (RequestDelegate)protocol.HandleAsync);
    }

    /// <summary>Cloud Tasks HTTP-target deliveries.</summary>
    public static IEndpointConventionBuilder MapTaskFunction(this IEndpointRouteBuilder endpoints, string pattern, ITaskFunction function)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(function);
        var protocol = new TaskProtocol(function, LoggerFor(endpoints, function));
        return endpoints.Map(pattern, (RequestDelegate)protocol.HandleAsync);
    }

    /// <summary>Cloud Storage object CloudEvents; events of the other kind are acknowledged unhandled.</summary>
    public static IEndpointConventionBuilder MapStorageFunction(this IEndpointRouteBuilder endpoints, string pattern, IStorageFunction function)
    {
        ArgumentNullException.ThrowIfNull(function);
        return endpoints.MapCloudEvents(pattern, function, cloudEvent =>
        {
            if (!StorageEventDecoder.TryGetKind(cloudEvent.Type, out var kind) || kind != function.Kind)
            {
                return EventRoute.Ignore($"the function handles {function.Kind} storage events only");
            }

            var storageEvent = StorageEventDecoder.Decode(cloudEvent);
            return EventRoute.Run(cancellationToken => function.HandleAsync(storageEvent, cancellationToken));
        });
    }

    /// <summary>Firestore document CloudEvents (protobuf or JSON data).</summary>
    public static IEndpointConventionBuilder MapDocumentFunction(this IEndpointRouteBuilder endpoints, string pattern, IDocumentFunction function)
    {
        ArgumentNullException.ThrowIfNull(function);
        return endpoints.MapCloudEvents(pattern, function, cloudEvent =>
        {
            if (!FirestoreEventDecoder.IsDocumentEvent(cloudEvent.Type))
            {
                return EventRoute.Ignore("the function handles Firestore document events only");
            }

            var change = FirestoreEventDecoder.Decode(cloudEvent);
            return EventRoute.Run(cancellationToken => function.HandleAsync(change, cancellationToken));
        });
    }

    /// <summary>Cloud Audit Log CloudEvents; entries of other methods are acknowledged unhandled.</summary>
    public static IEndpointConventionBuilder MapAuditLogFunction(this IEndpointRouteBuilder endpoints, string pattern, IAuditLogFunction function)
    {
        ArgumentNullException.ThrowIfNull(function);
        return endpoints.MapCloudEvents(pattern, function, cloudEvent =>
        {
            if (cloudEvent.Type != AuditLogEventDecoder.WrittenType)
            {
                return EventRoute.Ignore("the function handles audit log entries only");
            }

            var auditEvent = AuditLogEventDecoder.Decode(cloudEvent);
            return auditEvent.MethodName == function.MethodName
                ? EventRoute.Run(cancellationToken => function.HandleAsync(auditEvent, cancellationToken))
                : EventRoute.Ignore($"the entry is for {auditEvent.MethodName}, the function handles {function.MethodName}");
        });
    }

    private static IEndpointConventionBuilder MapCloudEvents(
        this IEndpointRouteBuilder endpoints, string pattern, object function, Func<CloudNative.CloudEvents.CloudEvent, EventRoute> route)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var protocol = new CloudEventProtocol(route, LoggerFor(endpoints, function));
        return endpoints.Map(pattern, (RequestDelegate)protocol.HandleAsync);
    }

    // Logs carry the function's own name as their category, so each function's lines are easy to find.
    private static ILogger LoggerFor(IEndpointRouteBuilder endpoints, object function) =>
        endpoints.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger(function.GetType().FullName ?? function.GetType().Name);
}
