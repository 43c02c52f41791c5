using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ReverseImageSearch.Gcp.Auth;

public static class AuthServiceCollectionExtensions
{
    /// <summary>Configuration key that overrides Google's certificate URL (tests, private mirrors).</summary>
    public const string CertificatesUrlKey = "FIREBASE_ID_TOKEN_CERTIFICATES_URL";

    /// <summary>Set by the Firebase tooling when an Auth emulator is running; turns on acceptance of its unsigned tokens.</summary>
    public const string AuthEmulatorHostKey = "FIREBASE_AUTH_EMULATOR_HOST";

    /// <summary>
    /// Registers <see cref="FirebaseIdTokenVerifier"/> as the <see cref="ICallerAuthenticator"/>, configured for
    /// <paramref name="projectId"/>; emulator tokens are accepted only when FIREBASE_AUTH_EMULATOR_HOST is set.
    /// </summary>
    public static IServiceCollection AddFirebaseCallerAuthentication(this IServiceCollection services, IConfiguration configuration, string projectId)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new FirebaseIdTokenVerifierOptions
        {
            ProjectId = projectId,
            AcceptEmulatorTokens = !string.IsNullOrWhiteSpace(configuration[AuthEmulatorHostKey]),
            CertificatesUri = configuration[CertificatesUrlKey] is { Length: > 0 } url
                ? new Uri(url)
                : FirebaseIdTokenVerifierOptions.GoogleCertificatesUri,
        };
        services.AddHttpClient(nameof(FirebaseIdTokenVerifier));
        services.AddSingleton<ICallerAuthenticator>(provider => new FirebaseIdTokenVerifier(
            provider.GetRequiredService<IHttpClientFactory>().CreateClient(nameof(FirebaseIdTokenVerifier)),
            options,
            provider.GetService<TimeProvider>() ?? TimeProvider.System));
        return services;
    }

    /// <summary>Configuration key that overrides App Check's JWKS URL (tests).</summary>
    public const string AppCheckJwksUrlKey = "FIREBASE_APP_CHECK_JWKS_URL";

    /// <summary>
    /// With ENFORCE_APP_CHECK on, registers the <see cref="AppCheckVerifier"/> the callable protocol then requires a valid
    /// App Check token from; with it off, registers nothing and calls are not checked (firebase-functions' default).
    /// </summary>
    public static IServiceCollection AddAppCheckEnforcement(this IServiceCollection services, IConfiguration configuration, bool enforce, string? projectNumber)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (!enforce)
        {
            return services;
        }

        ArgumentException.ThrowIfNullOrEmpty(projectNumber);
        var jwks = configuration[AppCheckJwksUrlKey] is { Length: > 0 } url ? new Uri(url) : null;
        services.AddHttpClient(nameof(AppCheckVerifier));
        services.AddSingleton(provider => new AppCheckVerifier(
            provider.GetRequiredService<IHttpClientFactory>().CreateClient(nameof(AppCheckVerifier)),
            projectNumber,
            jwks,
            provider.GetService<TimeProvider>() ?? TimeProvider.System));
        return services;
    }
}
