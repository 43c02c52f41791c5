using ReverseImageSearch.Gcp.Http;

namespace ReverseImageSearch.Gcp.Tasks;

/// <summary>The service account tasks are signed as (their oidcToken).</summary>
public interface IServiceAccountEmailSource
{
    ValueTask<string> GetEmailAsync(CancellationToken cancellationToken);
}

/// <summary>SERVICE_ACCOUNT_EMAIL when configured, else the runtime's default account from the metadata server.</summary>
public sealed class ServiceAccountEmailSource(GcpAdapterOptions options, IHttpClientFactory httpClients, GcpEndpoints endpoints) : IServiceAccountEmailSource
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _cached = options.ServiceAccountEmail;

    public async ValueTask<string> GetEmailAsync(CancellationToken cancellationToken)
    {
        if (_cached is not null)
        {
            return _cached;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_cached is null)
            {
                var client = new GoogleRestClient(httpClients.CreateClient(GcpHttpPipeline.MetadataClient));
                using var request = new HttpRequestMessage(
                    HttpMethod.Get,
                    new Uri(endpoints.MetadataServerBase.ToString().TrimEnd('/') + "/instance/service-accounts/default/email"));
                request.Headers.Add("Metadata-Flavor", "Google");
                using var response = await client.SendAsync(request, cancellationToken);
                var email = (await response.Content.ReadAsStringAsync(cancellationToken)).Trim();
                _cached = email.Length > 0
                    ? email
                    : throw new InvalidOperationException("The metadata server gave no default service account email; set SERVICE_ACCOUNT_EMAIL.");
            }

            return _cached;
        }
        finally
        {
            _gate.Release();
        }
    }
}
