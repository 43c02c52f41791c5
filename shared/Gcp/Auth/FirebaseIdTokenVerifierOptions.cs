namespace ReverseImageSearch.Gcp.Auth;

public sealed class FirebaseIdTokenVerifierOptions
{
    /// <summary>Google's certificate map (kid to X.509 PEM) for Firebase ID tokens.</summary>
    public static readonly Uri GoogleCertificatesUri =
        new("https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com");

    /// <summary>The Firebase project id: the tokens' audience and the last part of their issuer.</summary>
    public required string ProjectId { get; init; }

    public Uri CertificatesUri { get; init; } = GoogleCertificatesUri;

    /// <summary>Accept the Auth emulator's unsigned tokens (alg none). Only when FIREBASE_AUTH_EMULATOR_HOST is set.</summary>
    public bool AcceptEmulatorTokens { get; init; }

    /// <summary>Allowance for clocks that disagree, applied to iat and auth_time.</summary>
    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Least time between two fetches (for unknown key ids, expired caches and after failures), so forged kids cannot hammer Google.</summary>
    public TimeSpan MinimumRefetchInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Cache lifetime when the certificate response names no max-age.</summary>
    public TimeSpan DefaultCacheDuration { get; init; } = TimeSpan.FromHours(1);
}
