using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Gcp.Auth;

/// <summary>Turns the bearer token of a callable request into the caller's identity.</summary>
public interface ICallerAuthenticator
{
    /// <summary>Returns the verified caller; throws <see cref="CallerAuthenticationException"/> when the token is not acceptable.</summary>
    Task<CallerIdentity> AuthenticateAsync(string bearerToken, CancellationToken cancellationToken);
}

/// <summary>The token was malformed, forged, expired or meant for someone else.</summary>
public sealed class CallerAuthenticationException : Exception
{
    public CallerAuthenticationException(string message)
        : base(message)
    {
    }

    public CallerAuthenticationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public CallerAuthenticationException()
    {
    }
}
