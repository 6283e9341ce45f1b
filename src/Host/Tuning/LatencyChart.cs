using System.Globalization;
using System.Text;

namespace Krustlet.Host.Tuning;

/// <summary>
/// A cumulative distribution plot of latency samples as a standalone SVG, log-scaled time axis:
/// <c>krustlet tune</c>'s chart of each setting's event → Running times, and the end-to-end benchmark's
/// start latencies (bench/EndToEnd.Benchmarks compiles this file in).
/// </summary>
internal static class LatencyChart
{
    /// <summary>The most steps drawn per series.</summary>
    public const int MaxSteps = 600;

    private static readonly string[] Colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];

    public static string Cdf(IReadOnlyDictionary<string, IReadOnlyList<double>> series, string title)
    {
        const double Width = 900, Height = 520, Left = 70, Right = 20, Top = 40, Bottom = 60;
        var plotW = Width - Left - Right;
        var plotH = Height - Top - Bottom - (18 * series.Count);
        var positive = series.Values.SelectMany(v => v).Where(v => v > 0).DefaultIfEmpty(1).ToList();
        var lo = Math.Floor(Math.Log10(positive.Min()));
        var hi = Math.Ceiling(Math.Log10(positive.Max()));
        if (hi <= lo)
        {
            hi = lo + 1;
        }

        double X(double ms) => Left + ((Math.Log10(Math.Max(ms, Math.Pow(10, lo))) - lo) / (hi - lo) * plotW);
        double Y(double q) => Top + ((1 - q) * plotH);
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{Escape(title)}</text>\n");
        for (var e = lo; e <= hi; e++)
        {
            var x = X(Math.Pow(10, e));
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{x:0.#}\" y1=\"{Top}\" x2=\"{x:0.#}\" y2=\"{Top + plotH}\" stroke=\"#ddd\"/>\n");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{x:0.#}\" y=\"{Top + plotH + 16}\" text-anchor=\"middle\">{Label(Math.Pow(10, e))}</text>\n");
        }

        foreach (var q in new[] { 0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0 })
        {
            var y = Y(q);
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{y:0.#}\" x2=\"{Left + plotW}\" y2=\"{y:0.#}\" stroke=\"#eee\"/>\n");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 6}\" y=\"{y + 4:0.#}\" text-anchor=\"end\">{q:0.##}</text>\n");
        }

        svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{Left}\" y=\"{Top}\" width=\"{plotW}\" height=\"{plotH}\" fill=\"none\" stroke=\"#333\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left + (plotW / 2)}\" y=\"{Top + plotH + 36}\" text-anchor=\"middle\">latency (ms, log scale)</text>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text transform=\"translate(18 {Top + (plotH / 2)}) rotate(-90)\" text-anchor=\"middle\">fraction of pods / runs</text>\n");
        var i = 0;
        foreach (var (name, values) in series)
        {
            var color = Colors[i % Colors.Length];
            var sorted = values.Order().ToArray();
            var points = new StringBuilder();
            var stride = Math.Max(1, (sorted.Length + MaxSteps - 1) / MaxSteps);
            for (var k = 0; k < sorted.Length; k += Math.Min(stride, Math.Max(1, sorted.Length - 1 - k)))
            {
                // A step: up at each sample; past MaxSteps samples, at every stride-th one (and the last),
                // which the plot's few hundred pixels cannot tell apart, and the file stays small.
                var x = X(sorted[k]);
                points.Append(CultureInfo.InvariantCulture, $"{x:0.##},{Y((double)k / sorted.Length):0.##} {x:0.##},{Y((double)(k + 1) / sorted.Length):0.##} ");
            }

            svg.Append(CultureInfo.InvariantCulture, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{points}\"/>\n");
            var ly = Top + plotH + 50 + (18 * i);
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{ly - 4}\" x2=\"{Left + 24}\" y2=\"{ly - 4}\" stroke=\"{color}\" stroke-width=\"3\"/>\n");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left + 30}\" y=\"{ly}\">{Escape(name)} (n = {sorted.Length})</text>\n");
            i++;
        }

        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static string Label(double ms) => ms switch
    {
        < 1 => string.Create(CultureInfo.InvariantCulture, $"{ms * 1000:0.#} µs"),
        < 1000 => string.Create(CultureInfo.InvariantCulture, $"{ms:0.#} ms"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{ms / 1000:0.#} s"),
    };

    private static string Escape(string text) => text.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);
}
