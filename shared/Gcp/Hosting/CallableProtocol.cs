using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;
using ReverseImageSearch.Core;
using ReverseImageSearch.Core.Triggers;
using ReverseImageSearch.Gcp.Auth;

namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>The Firebase callable protocol (https.onCall) in front of an <see cref="ICallableFunction"/>.</summary>
/// <param name="origins">Browser pages allowed to call (CORS); others are refused before anything runs.</param>
/// <param name="bodyLimit">The request size accepted, or null for the server's own limit.</param>
/// <param name="appCheck">With App Check enforced, the verifier every call's X-Firebase-AppCheck token must pass; else null.</param>
internal sealed partial class CallableProtocol(
    ICallableFunction function, ICallerAuthenticator authenticator, CallableOrigins origins, CallableBodyLimit? bodyLimit, ILogger logger,
    AppCheckVerifier? appCheck = null)
{
    private const string BearerPrefix = "Bearer ";

    // The cors middleware's default method list, which firebase-functions leaves as it is.
    private const string AllowedMethods = "GET,HEAD,PUT,PATCH,POST,DELETE";

    public async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        response.Headers.Append(HeaderNames.Vary, HeaderNames.Origin);
        if (request.Headers.Origin is { Count: > 0 } origin && !origins.Allows(request, origin.ToString()))
        {
            LogRefusedOrigin(logger, origin.ToString());
            await FunctionErrorResponses.WriteErrorAsync(response, FunctionErrorCode.PermissionDenied,
                $"Web pages at {origin} may not call this function. {origins.HowToAllow}".TrimEnd(), details: null);
            return;
        }

        // Like the cors middleware with origin: true: reflect the (allowed) origin that asks.
        if (request.Headers.Origin is { Count: > 0 } allowed)
        {
            response.Headers.AccessControlAllowOrigin = allowed;
        }

        if (HttpMethods.IsOptions(request.Method))
        {
            AnswerPreflight(request, response);
            return;
        }

        if (bodyLimit is not null && await bodyLimit.RefuseOversizeAsync(context))
        {
            return;
        }

        using var admitted = bodyLimit is null ? null : await bodyLimit.AdmitAsync(context);

        ProtocolData? data;
        try
        {
            data = await ProtocolRequest.TryReadDataAsync(request);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge && bodyLimit is not null)
        {
            await bodyLimit.WriteTooLargeAsync(response);
            return;
        }

        if (data is null)
        {
            await FunctionErrorResponses.WriteBadRequestAsync(response);
            return;
        }

        using var received = data;
        ReadOnlyMemory<byte> answer;
        try
        {
            CallerIdentity? caller = null;
            if (request.Headers.Authorization is { Count: > 0 } authorization)
            {
                caller = await AuthenticateAsync(authorization.ToString(), context.RequestAborted);
                if (caller is null)
                {
                    await FunctionErrorResponses.WriteUnauthenticatedAsync(response);
                    return;
                }
            }

            if (appCheck is not null && !await PassesAppCheckAsync(request, context.RequestAborted))
            {
                await FunctionErrorResponses.WriteUnauthenticatedAsync(response);
                return;
            }

            var result = await function.HandleAsync(new CallableRequest(data.Data, caller), context.RequestAborted);

            // The result's one serialisation: a handler returns its typed response, never JSON of its own.
            answer = FunctionErrorResponses.ComposeJson(writer =>
            {
                writer.WriteStartObject();
                writer.WritePropertyName("result");
                JsonSerializer.Serialize(writer, result, result?.GetType() ?? typeof(object), CoreJson.Options);
                writer.WriteEndObject();
            });
        }
        catch (Exception e)
        {
            await FunctionErrorResponses.WriteFailureAsync(response, e, logger);
            return;
        }

        await FunctionErrorResponses.WriteJsonAsync(response, StatusCodes.Status200OK, answer);
    }

    // Every OPTIONS is a preflight to the cors middleware; it never reaches the handler.
    private static void AnswerPreflight(HttpRequest request, HttpResponse response)
    {
        response.Headers.AccessControlAllowMethods = AllowedMethods;
        if (request.Headers.AccessControlRequestHeaders is { Count: > 0 } requested)
        {
            response.Headers.AccessControlAllowHeaders = requested;
            response.Headers.Append(HeaderNames.Vary, HeaderNames.AccessControlRequestHeaders);
        }

        response.StatusCode = StatusCodes.Status204NoContent;
        response.ContentLength = 0;
    }

    /// <summary>
    /// The caller, or null when the Authorization header is not an acceptable bearer token. Other failures
    /// (Google's certificates unreachable) are ours, not the caller's: they propagate and answer INTERNAL.
    /// </summary>
    private async Task<CallerIdentity?> AuthenticateAsync(string authorization, CancellationToken cancellationToken)
    {
        if (!authorization.StartsWith(BearerPrefix, StringComparison.Ordinal) || authorization.Length == BearerPrefix.Length)
        {
            LogRejectedToken(logger, "the Authorization header is not 'Bearer <token>'");
            return null;
        }

        try
        {
            return await authenticator.AuthenticateAsync(authorization[BearerPrefix.Length..], cancellationToken);
        }
        catch (CallerAuthenticationException e)
        {
            LogRejectedToken(logger, e.Message);
            return null;
        }
    }

    private async Task<bool> PassesAppCheckAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        try
        {
            await appCheck!.VerifyAsync(request.Headers[AppCheckVerifier.HeaderName].ToString(), cancellationToken);
            return true;
        }
        catch (CallerAuthenticationException e)
        {
            LogRejectedAppCheck(logger, e.Message);
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused a call without a valid App Check token: {Reason}")]
    private static partial void LogRejectedAppCheck(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused a call from the web page at {Origin}")]
    private static partial void LogRefusedOrigin(ILogger logger, string origin);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected the caller's ID token: {Reason}")]
    private static partial void LogRejectedToken(ILogger logger, string reason);
}
