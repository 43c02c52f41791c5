using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Tests.Firestore;

/// <summary>INDEX_BACKEND picks the vector engine; the combinations Firestore cannot serve stop the start.</summary>
public sealed class IndexBackendOptionsTests
{
    private static ExtensionOptions Load(params (string Key, string Value)[] extra) => TestOptions.Load(extra);

    [Test]
    public void UnsetMeansVertexSoAnOlderInstallationKeepsItsIndex()
    {
        var options = Load();
        Assert.That(options.IndexBackend, Is.EqualTo(IndexBackend.Vertex));
        Assert.That(options.IndexNeedsBuild, Is.True);
    }

    [TestCase("firestore", IndexBackend.Firestore, false)]
    [TestCase("vertex", IndexBackend.Vertex, true)]
    public void BothValuesAreAccepted(string value, IndexBackend expected, bool needsBuild)
    {
        var options = Load(("INDEX_BACKEND", value));
        Assert.That(options.IndexBackend, Is.EqualTo(expected));
        Assert.That(options.IndexNeedsBuild, Is.EqualTo(needsBuild));
    }

    [TestCase("Firestore")]
    [TestCase("bigquery")]
    public void AnyOtherValueStopsTheStartNamingTheVariable(string value)
    {
        var error = Assert.Throws<InvalidConfigurationException>(() => Load(("INDEX_BACKEND", value)));
        Assert.That(error!.Variable, Is.EqualTo("INDEX_BACKEND"));
        Assert.That(error.Message, Does.Contain("must be one of firestore, vertex").And.Not.Contain("\n"));
    }

    [Test]
    public void L1DistanceIsRefusedForFirestoreWithOneLineReason()
    {
        var error = Assert.Throws<InvalidConfigurationException>(() => Load(("INDEX_BACKEND", "firestore"), ("DISTANCE_MEASURE", "L1_DISTANCE")));
        Assert.That(error!.Variable, Is.EqualTo("DISTANCE_MEASURE"));
        Assert.That(error.Message, Does.Contain("INDEX_BACKEND=firestore").And.Not.Contain("\n"));
    }

    [TestCase("SQUARED_L2_DISTANCE")]
    [TestCase("COSINE_DISTANCE")]
    [TestCase("DOT_PRODUCT_DISTANCE")]
    public void TheOtherMeasuresWorkWithFirestore(string measure) =>
        Assert.That(Load(("INDEX_BACKEND", "firestore"), ("DISTANCE_MEASURE", measure)).IndexBackend, Is.EqualTo(IndexBackend.Firestore));

    [Test]
    public void L1DistanceStaysAvailableForVertex() =>
        Assert.That(Load(("INDEX_BACKEND", "vertex"), ("DISTANCE_MEASURE", "L1_DISTANCE")).DistanceMeasure, Is.EqualTo(DistanceMeasure.L1));
}
