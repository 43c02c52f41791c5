using Google.Apis.Auth.OAuth2;

namespace ReverseImageSearch.Gcp.Http;

/// <summary>OAuth2 access tokens for the Google APIs.</summary>
public interface IAccessTokenSource
{
    ValueTask<string> GetAccessTokenAsync(CancellationToken cancellationToken);
}

/// <summary>Always the same token: the Firestore emulator ("owner") and tests.</summary>
public sealed class FixedAccessTokenSource(string token) : IAccessTokenSource
{
    public ValueTask<string> GetAccessTokenAsync(CancellationToken cancellationToken) => ValueTask.FromResult(token);
}

/// <summary>
/// Application Default Credentials with the cloud-platform scope: the metadata server when deployed,
/// GOOGLE_APPLICATION_CREDENTIALS or the gcloud login locally. Google.Apis.Auth caches and refreshes the token.
/// </summary>
public sealed class ApplicationDefaultAccessTokenSource : IAccessTokenSource
{
    public const string CloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform";

    private readonly Lazy<Task<ITokenAccess>> _credential = new(LoadAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    public async ValueTask<string> GetAccessTokenAsync(CancellationToken cancellationToken)
    {
        var access = await _credential.Value;
        return await access.GetAccessTokenForRequestAsync(cancellationToken: cancellationToken);
    }

    private static async Task<ITokenAccess> LoadAsync()
    {
        var adc = await GoogleCredential.GetApplicationDefaultAsync();
        return adc.IsCreateScopedRequired ? adc.CreateScoped(CloudPlatformScope) : adc;
    }
}

/// <summary>A request was about to carry the access token to a host that may not receive it; nothing was sent.</summary>
public sealed class TokenDestinationException(string message) : InvalidOperationException(message);

/// <summary>
/// Adds <c>Authorization: Bearer</c> from an <see cref="IAccessTokenSource"/> to every request whose destination
/// <paramref name="mayReceiveToken"/> allows (<see cref="GcpEndpoints.MayReceiveToken"/>); a request to any other
/// host is refused with <see cref="TokenDestinationException"/> before a token is fetched or anything is sent.
/// </summary>
public sealed class BearerTokenHandler(IAccessTokenSource tokens, Func<Uri, bool> mayReceiveToken) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.RequestUri is not { } uri || !mayReceiveToken(uri))
        {
            throw new TokenDestinationException(
                $"Refusing to send the service account's access token to {request.RequestUri?.GetLeftPart(UriPartial.Authority) ?? "(no URI)"}: "
                + "only Google API hosts (*.googleapis.com, *.vdb.vertexai.goog) and the configured endpoints receive it.");
        }

        var token = await tokens.GetAccessTokenAsync(cancellationToken);
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return await base.SendAsync(request, cancellationToken);
    }
}
