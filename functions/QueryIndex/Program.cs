using ReverseImageSearch.Embedding;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Gcp.Hosting;

return await FunctionHost.RunAsync<QueryIndex>(args, services => services.AddImageEmbedder());
