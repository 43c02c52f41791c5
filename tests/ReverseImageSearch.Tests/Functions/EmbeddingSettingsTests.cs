using System.Text.Json.Nodes;
using ReverseImageSearch.Core.Coordination;
using ReverseImageSearch.Core.Ports;
using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Tests.Functions;

/// <summary>
/// MATCH_COLOR and MATCH_CROPS belong to the index: the backfill records what the vectors were made with, and after a
/// change of either setting on an existing installation queries are refused (naming both settings) and uploads wait, instead of
/// vectors of two kinds being compared.
/// </summary>
[Parallelizable(ParallelScope.None)]
public sealed class EmbeddingSettingsTests
{
    [Test]
    public async Task ChangingMatchColorOnAnIndexRefusesQueriesAndHoldsUploadsUntilItIsSetBack()
    {
        await using var stack = LocalStackHarness.Create(imageCount: 3);
        await stack.StartAsync();
        await stack.WaitUntilDeployedAsync();
        var first = LocalStackHarness.SampleNames[0];
        Assert.That(await stack.NearestAsync(LocalStackHarness.SampleBytes(first)), Is.EqualTo(first), "MATCH_COLOR=true (the default) answers");

        stack.Settings["MATCH_COLOR"] = "false";
        await stack.RestartAsync();
        var refused = Assert.ThrowsAsync<FunctionException>(() => stack.NearestAsync(LocalStackHarness.SampleBytes(first)));
        Assert.Multiple(() =>
        {
            Assert.That(refused!.Code, Is.EqualTo(FunctionErrorCode.FailedPrecondition));
            Assert.That(refused.Message, Does.Contain("MATCH_COLOR=true (now false)").And.Contain("embed every image again"));
        });

        // An upload made while the settings disagree is not written beside the other vectors; it waits.
        var later = LocalStackHarness.SampleNames[5];
        stack.AddImage(later, LocalStackHarness.SampleBytes(later));
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.That(await stack.State.GetDatapointRecordAsync(later, CancellationToken.None), Is.Null, "no vector of the other kind was written");

        stack.Settings["MATCH_COLOR"] = "true";
        await stack.RestartAsync();
        await LocalStackHarness.WaitUntilAsync(
            async () => await stack.NearestAsync(LocalStackHarness.SampleBytes(later)) == later, TimeSpan.FromSeconds(60), "the held upload to be indexed");
    }

    [Test]
    public async Task AnIndexWithoutRecordedSettingsWasMadeWithLumaInput()
    {
        await using var stack = LocalStackHarness.Create(imageCount: 3, new Dictionary<string, string?> { ["MATCH_COLOR"] = "false" });
        await stack.StartAsync();
        await stack.WaitUntilDeployedAsync();
        Assert.That((await stack.State.ReadIndexAvailabilityAsync(CancellationToken.None)).EmbeddingMismatch, Is.Null);

        // An installation from before MATCH_COLOR: the metadata document names no settings.
        var metadata = await stack.MetadataDocumentAsync();
        Assert.That(metadata!["matchColor"], Is.False, "the backfill recorded the settings");
        await stack.Documents.SetAsync(stack.State.Paths.Metadata, new Dictionary<string, object?>
        {
            ["matchColor"] = FieldDelete.Value,
            ["embeddingModel"] = FieldDelete.Value,
        }, SetMode.Merge, CancellationToken.None);

        Assert.That((await stack.State.ReadIndexAvailabilityAsync(CancellationToken.None)).EmbeddingMismatch, Is.Null, "luma vectors under MATCH_COLOR=false");
        stack.Settings["MATCH_COLOR"] = "true";
        await stack.RestartAsync();
        var state = await stack.State.ReadIndexAvailabilityAsync(CancellationToken.None);
        Assert.That(state.EmbeddingMismatch, Does.Contain("MATCH_COLOR=false (now true)"));
        var refused = Assert.ThrowsAsync<FunctionException>(() => stack.CallQueryAsync(
            new JsonObject { ["query"] = new JsonArray(Convert.ToBase64String(LocalStackHarness.SampleBytes(LocalStackHarness.SampleNames[0]))) }));
        Assert.That(refused!.Code, Is.EqualTo(FunctionErrorCode.FailedPrecondition));
    }

    [Test]
    public async Task ChangingMatchCropsOnAnIndexRefusesQueriesNamingItAndAnIndexRecordedWithoutItHasNoViews()
    {
        await using var stack = LocalStackHarness.Create(imageCount: 3);
        await stack.StartAsync();
        await stack.WaitUntilDeployedAsync();
        var first = LocalStackHarness.SampleNames[0];
        var metadata = await stack.MetadataDocumentAsync();
        Assert.That(metadata!["matchCrops"], Is.False, "the backfill recorded MATCH_CROPS=false (the default)");

        stack.Settings["MATCH_CROPS"] = "true";
        await stack.RestartAsync();
        var refused = Assert.ThrowsAsync<FunctionException>(() => stack.NearestAsync(LocalStackHarness.SampleBytes(first)));
        Assert.Multiple(() =>
        {
            Assert.That(refused!.Code, Is.EqualTo(FunctionErrorCode.FailedPrecondition));
            Assert.That(refused.Message, Does.Contain("MATCH_CROPS=false (now true)").And.Contain("embed every image again"));
            Assert.That(refused.Message, Does.Not.Contain("MATCH_COLOR"));
        });

        // An index recorded before MATCH_CROPS existed names MATCH_COLOR only: it holds no views, as MATCH_CROPS=false.
        await stack.Documents.SetAsync(stack.State.Paths.Metadata, new Dictionary<string, object?>
        {
            ["matchCrops"] = FieldDelete.Value,
        }, SetMode.Merge, CancellationToken.None);
        Assert.That((await stack.State.ReadIndexAvailabilityAsync(CancellationToken.None)).EmbeddingMismatch, Does.Contain("MATCH_CROPS=false (now true)"));
        stack.Settings["MATCH_CROPS"] = "false";
        await stack.RestartAsync();
        Assert.That((await stack.State.ReadIndexAvailabilityAsync(CancellationToken.None)).EmbeddingMismatch, Is.Null);
        Assert.That(await stack.NearestAsync(LocalStackHarness.SampleBytes(first)), Is.EqualTo(first));
    }

    [Test]
    public void TheModelCountsWhenRecordedAndIsIgnoredWhenNot()
    {
        var running = new EmbeddingSettings("bundled MobileNetV2 (float32)", MatchColor: true);
        Assert.Multiple(() =>
        {
            Assert.That(running.MismatchWith(running with { }), Is.Null);
            Assert.That(running.MismatchWith(new EmbeddingSettings("bundled MobileNetV2 (int8)", true)), Does.Contain("the model bundled MobileNetV2 (int8)"));
            Assert.That(running.MismatchWith(new EmbeddingSettings(null, true)), Is.Null);
            Assert.That(running.MismatchWith(EmbeddingSettings.BeforeMatchColor), Does.Contain("MATCH_COLOR=false (now true)"));
            Assert.That(running.MismatchWith(running with { MatchCrops = true }), Does.Contain("MATCH_CROPS=true (now false)"));
            Assert.That(running with { MatchCrops = true }, Has.Property(nameof(EmbeddingSettings.MatchCrops)).True);
            Assert.That(EmbeddingSettings.BeforeMatchColor.MatchCrops, Is.False);
        });
    }
}
