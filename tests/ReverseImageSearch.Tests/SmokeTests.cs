using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Tests;

public class OptionsTests
{
    [Test]
    public void ParameterValuesRoundTrip()
    {
        foreach (var measure in Enum.GetValues<DistanceMeasure>())
        {
            Assert.That(ParameterValues.TryParse(measure.ToParameterValue(), out DistanceMeasure parsed), Is.True);
            Assert.That(parsed, Is.EqualTo(measure));
        }

        foreach (var algorithm in Enum.GetValues<IndexAlgorithm>())
        {
            Assert.That(ParameterValues.TryParse(algorithm.ToParameterValue(), out IndexAlgorithm parsed), Is.True);
            Assert.That(parsed, Is.EqualTo(algorithm));
        }

        foreach (var size in Enum.GetValues<IndexShardSize>())
        {
            Assert.That(ParameterValues.TryParse(size.ToParameterValue(), out IndexShardSize parsed), Is.True);
            Assert.That(parsed, Is.EqualTo(size));
        }
    }

    [Test]
    public void EveryAlgorithmAndShardSizeChoiceLoadsAsItsValue()
    {
        Assert.That(ExtensionParameters.AlgorithmConfig.Values.Select(v => ParameterValues.TryParse(v, out IndexAlgorithm _)), Is.All.True);
        Assert.That(ExtensionParameters.ShardSize.Values.Select(v => ParameterValues.TryParse(v, out IndexShardSize _)), Is.All.True);
        Assert.That(ExtensionParameters.DistanceMeasure.Values.Select(v => ParameterValues.TryParse(v, out DistanceMeasure _)), Is.All.True);
    }
}
