using ReverseImageSearch.Embedding;
using ReverseImageSearch.Functions;
using ReverseImageSearch.Gcp.Hosting;

return await FunctionHost.RunAsync<StreamUpdateDatapoint>(args, services => services.AddImageEmbedder());
