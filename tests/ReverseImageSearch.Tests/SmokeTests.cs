using ReverseImageSearch.Core.Configuration;

namespace ReverseImageSearch.Tests;

public class OptionsTests
{
    [Test]
    public void DistanceMeasureNamesRoundTrip()
    {
        foreach (var measure in Enum.GetValues<DistanceMeasure>())
        {
            Assert.That(DistanceMeasureNames.TryParse(measure.ToWireName(), out var parsed), Is.True);
            Assert.That(parsed, Is.EqualTo(measure));
        }
    }
}
