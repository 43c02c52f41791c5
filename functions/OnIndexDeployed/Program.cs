using ReverseImageSearch.Functions;
using ReverseImageSearch.Gcp.Hosting;

return await FunctionHost.RunAsync<OnIndexDeployed>(args);
