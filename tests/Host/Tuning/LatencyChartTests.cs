using System.Text.RegularExpressions;
using Krustlet.Host.Tuning;

namespace Krustlet.Host.Tests.Tuning;

[TestClass]
public sealed partial class LatencyChartTests
{
    [TestMethod]
    public void A_large_series_is_drawn_with_a_bounded_number_of_steps_from_its_smallest_to_its_largest_sample()
    {
        var samples = Enumerable.Range(1, 10_000).Select(i => (double)i).Reverse().ToList();

        var svg = LatencyChart.Cdf(new Dictionary<string, IReadOnlyList<double>> { ["many"] = samples, ["few"] = [5, 50, 500] }, "t");

        var lines = PolylinePoints().Matches(svg).Select(m => m.Groups[1].Value.Trim().Split(' ')).ToList();
        Assert.HasCount(2, lines);
        Assert.IsLessThanOrEqualTo((2 * LatencyChart.MaxSteps) + 4, lines[0].Length, "at most MaxSteps steps of two points each");
        Assert.HasCount(6, lines[1], "a small series keeps a step per sample");
        var x = (string point) => double.Parse(point.Split(',')[0], System.Globalization.CultureInfo.InvariantCulture);
        var y = (string point) => double.Parse(point.Split(',')[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.IsLessThan(x(lines[0][^1]), x(lines[0][0]), "it starts at the smallest sample and ends at the largest");
        Assert.AreEqual(y(lines[1][^1]), y(lines[0][^1]), 0.01, "both reach the top");
        Assert.AreEqual(y(lines[1][0]), y(lines[0][0]), 0.01, "both start at the bottom");
    }

    [GeneratedRegex("<polyline[^>]* points=\"([^\"]*)\"")]
    private static partial Regex PolylinePoints();
}
