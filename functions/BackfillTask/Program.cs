using ReverseImageSearch.Embedding;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Gcp.Hosting;

return await FunctionHost.RunAsync<BackfillTask>(args, services => services.AddImageEmbedder());
