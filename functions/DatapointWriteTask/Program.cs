using ReverseImageSearch.Embedding;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Gcp.Hosting;

return await FunctionHost.RunAsync<DatapointWriteTask>(args, services => services.AddImageEmbedder());
