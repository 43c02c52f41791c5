namespace ReverseImageSearch.Gcp.Hosting;

/// <summary>Runs one function as a Cloud Run service listening on $PORT.</summary>
public static class FunctionHost
{
    /// <summary>Hosts <typeparamref name="TFunction"/> with the Google Cloud adapters; returns the exit code.</summary>
    public static Task<int> RunAsync<TFunction>(string[] args)
        where TFunction : class
    {
        ArgumentNullException.ThrowIfNull(args);
        throw new NotImplementedException("Hosting arrives with the Gcp hosting work.");
    }
}
