using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Krustlet.Http.Benchmarks;

/// <summary>The run as a markdown table with the issue's five figures, and as JSON lines.</summary>
internal static class Report
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static string Markdown(JsonObject machine, string command, DateTimeOffset started, Options options, IReadOnlyList<Measurement> measurements, RssResult? rss)
    {
        var text = new StringBuilder();
        text.AppendLine(Invariant, $"### HTTP handler pods (#15): hello handler, c = {options.Concurrency}");
        text.AppendLine();
        text.AppendLine(Invariant, $"`{command}` — {started:yyyy-MM-dd HH:mm} UTC; {machine["cpu"]}, {machine["nproc"]} cores, {machine["memTotal"]}, kernel {machine["kernel"]}, .NET {machine["dotnet"]}, {machine["ab"]}; load average {machine["loadavgStart"]} at the start, {machine["loadavgEnd"]} at the end.");
        text.AppendLine(Invariant, $"Targets on CPUs {machine["targetCpus"]}, load generators on CPUs {machine["loadCpus"]}; {options.Rounds} interleaved rounds of {options.Duration.TotalSeconds:0.#} s per target and generator (the in-repo generator after {options.Warmup.TotalSeconds:0.#} s of warm-up), medians over the rounds.");
        text.AppendLine();
        text.AppendLine("| target | generator | requests/s (median) | range over rounds | p50 | p90 | p99 | max | errors | connections | target CPU (cores) | generator CPU (cores) |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var group in measurements.GroupBy(m => (m.Target, m.Load.Generator)))
        {
            var rounds = group.ToList();
            var rps = rounds.Select(m => m.Load.RequestsPerSecond).ToList();
            var unit = group.Key.Generator == "ab" ? "0" : "0.000";
            var keepAlive = group.Key.Generator == "ab" ? string.Create(Invariant, $" ({rounds.Sum(m => m.KeepAliveRequests ?? 0):N0} of {rounds.Sum(m => m.Load.Requests):N0} requests kept alive)") : "";
            text.AppendLine(Invariant, $"| {group.Key.Target} | {group.Key.Generator} | {Median(rps):N0} | {rps.Min():N0}–{rps.Max():N0} | {Ms(rounds, m => m.Load.P50Ms, unit)} | {Ms(rounds, m => m.Load.P90Ms, unit)} | {Ms(rounds, m => m.Load.P99Ms, unit)} | {Ms(rounds, m => m.Load.MaxMs, unit)} | {rounds.Sum(m => m.Load.Errors):N0} | {rounds.Max(m => m.Load.Connections):N0}{keepAlive} | {Median(rounds.Select(m => m.TargetCores).ToList()):0.00} | {(rounds.All(m => m.GeneratorCores is not null) ? Median(rounds.Select(m => m.GeneratorCores!.Value).ToList()).ToString("0.00", Invariant) : "")} |");
        }

        text.AppendLine();
        var generators = measurements.Select(m => m.Load.Generator).Distinct().ToList();
        text.Append("| figure | goal |");
        foreach (var generator in generators)
        {
            text.Append(Invariant, $" measured ({generator}) |");
        }

        text.AppendLine();
        text.Append("|---|---|");
        text.AppendLine(string.Concat(generators.Select(_ => "---|")));
        foreach (var figure in Figures(measurements, generators, rss, options))
        {
            text.Append(Invariant, $"| {figure.Name} | {figure.Goal} |");
            foreach (var value in figure.Values)
            {
                text.Append(Invariant, $" {value} |");
            }

            text.AppendLine();
        }

        if (rss is not null)
        {
            text.AppendLine();
            text.AppendLine(Invariant, $"RSS: idle agent {rss.IdleKiB / 1024.0:0.0} MiB ({rss.IdleThreads} threads); with {rss.Pods} idle handler pods {rss.WithPodsKiB / 1024.0:0.0} MiB ({rss.WithPodsThreads} threads), all answering {rss.PodsReadySeconds:0.0} s after their manifests were written; {options.Settle.TotalSeconds:0} s settle before each sample.");
        }

        return text.ToString();
    }

    public static List<string> JsonLines(JsonObject machine, string command, DateTimeOffset started, Options options, IReadOnlyList<Measurement> measurements, RssResult? rss)
    {
        var lines = new List<string>
        {
            new JsonObject
            {
                ["kind"] = "run",
                ["command"] = command,
                ["started"] = started.ToString("u", Invariant),
                ["machine"] = machine.DeepClone(),
                ["concurrency"] = options.Concurrency,
                ["rounds"] = options.Rounds,
                ["durationSeconds"] = options.Duration.TotalSeconds,
            }.ToJsonString(),
        };
        foreach (var m in measurements)
        {
            lines.Add(new JsonObject
            {
                ["kind"] = "measurement",
                ["round"] = m.Round,
                ["target"] = m.Target,
                ["generator"] = m.Load.Generator,
                ["seconds"] = Number(m.Load.Seconds),
                ["requests"] = m.Load.Requests,
                ["rps"] = Number(m.Load.RequestsPerSecond),
                ["p50Ms"] = Number(m.Load.P50Ms),
                ["p90Ms"] = Number(m.Load.P90Ms),
                ["p99Ms"] = Number(m.Load.P99Ms),
                ["maxMs"] = Number(m.Load.MaxMs),
                ["errors"] = m.Load.Errors,
                ["connections"] = m.Load.Connections,
                ["keepAliveRequests"] = m.KeepAliveRequests,
                ["firstError"] = m.Load.FirstError,
                ["targetCores"] = Number(m.TargetCores),
                ["generatorCores"] = m.GeneratorCores is { } g ? Number(g) : null,
            }.ToJsonString());
        }

        if (rss is not null)
        {
            lines.Add(new JsonObject
            {
                ["kind"] = "rss",
                ["pods"] = rss.Pods,
                ["idleKiB"] = rss.IdleKiB,
                ["idleThreads"] = rss.IdleThreads,
                ["withPodsKiB"] = rss.WithPodsKiB,
                ["withPodsThreads"] = rss.WithPodsThreads,
                ["deltaMiB"] = Number((rss.WithPodsKiB - rss.IdleKiB) / 1024.0),
                ["podsReadySeconds"] = Number(rss.PodsReadySeconds),
            }.ToJsonString());
        }

        foreach (var figure in Figures(measurements, measurements.Select(m => m.Load.Generator).Distinct().ToList(), rss, options))
        {
            var line = new JsonObject { ["kind"] = "figure", ["figure"] = figure.Name, ["goal"] = figure.Goal };
            var values = new JsonObject();
            for (var i = 0; i < figure.Generators.Count; i++)
            {
                values[figure.Generators[i]] = figure.Raw[i] is { } raw ? Number(raw) : null;
            }

            line["values"] = values;
            lines.Add(line.ToJsonString());
        }

        return lines;
    }

    private sealed record Figure(string Name, string Goal, IReadOnlyList<string> Generators, IReadOnlyList<string> Values, IReadOnlyList<double?> Raw);

    private static List<Figure> Figures(IReadOnlyList<Measurement> measurements, IReadOnlyList<string> generators, RssResult? rss, Options options)
    {
        var figures = new List<Figure>();
        void Add(string name, string goal, Func<string, double?> value, Func<double, string> show, Func<double, bool> met, string missing)
        {
            var raw = generators.Select(value).ToList();
            var shown = raw.Select(v => v is { } x && !double.IsNaN(x) ? $"**{show(x)}** ({(met(x) ? "met" : "not met")})" : missing).ToList();
            figures.Add(new Figure(name, goal, generators, shown, raw));
        }

        var noAgent = options.SkipAgent ? "to be measured (--skip-agent)" : "not measured";
        Add("requests/s, fresh instance per request", "≥ 20,000", g => MedianOf(measurements, "agent", g, m => m.Load.RequestsPerSecond), x => x.ToString("N0", Invariant), x => x >= 20_000, noAgent);
        Add("÷ a plain Kestrel endpoint returning the same bytes", "≥ 0.5", g => RatioOf(measurements, "agent", "kestrel", g), x => x.ToString("0.00", Invariant), x => x >= 0.5, noAgent);
        Add("÷ process-per-request CGI of the same C handler", "≥ 20×", g => RatioOf(measurements, "agent", "cgi", g), x => x.ToString("0.0", Invariant) + "×", x => x >= 20, noAgent);
        Add(string.Create(Invariant, $"p99 latency at c = {options.Concurrency}"), "≤ 5 ms", g => MedianOf(measurements, "agent", g, m => m.Load.P99Ms), x => x.ToString(x < 10 ? "0.00" : "0", Invariant) + " ms", x => x <= 5, noAgent);
        var rssMissing = options.SkipAgent ? noAgent : options.IdlePods == 0 ? "not measured (--idle-pods 0)" : "not measured";
        Add(string.Create(Invariant, $"agent RSS with {(rss?.Pods ?? options.IdlePods)} idle handler pods"), "≤ 100 MiB above the idle agent", _ => rss is null ? null : (rss.WithPodsKiB - rss.IdleKiB) / 1024.0, x => x.ToString("+0.0;−0.0", Invariant) + " MiB", x => x <= 100, rssMissing);
        figures.Add(new Figure("(reference) Kestrel ÷ CGI", "", generators,
            [.. generators.Select(g => RatioOf(measurements, "kestrel", "cgi", g) is { } r ? r.ToString("0.0", Invariant) + "×" : "")],
            [.. generators.Select(g => RatioOf(measurements, "kestrel", "cgi", g))]));
        return figures;
    }

    private static double? MedianOf(IReadOnlyList<Measurement> measurements, string target, string generator, Func<Measurement, double> value)
    {
        var values = measurements.Where(m => m.Target == target && m.Load.Generator == generator).Select(value).ToList();
        return values.Count == 0 ? null : Median(values);
    }

    /// <summary>The median over the rounds of each round's ratio (both measured in the same round).</summary>
    private static double? RatioOf(IReadOnlyList<Measurement> measurements, string numerator, string denominator, string generator)
    {
        var ratios = new List<double>();
        foreach (var round in measurements.Where(m => m.Load.Generator == generator).GroupBy(m => m.Round))
        {
            var top = round.FirstOrDefault(m => m.Target == numerator);
            var bottom = round.FirstOrDefault(m => m.Target == denominator);
            if (top is not null && bottom is not null && bottom.Load.RequestsPerSecond > 0)
            {
                ratios.Add(top.Load.RequestsPerSecond / bottom.Load.RequestsPerSecond);
            }
        }

        return ratios.Count == 0 ? null : Median(ratios);
    }

    private static string Ms(IReadOnlyList<Measurement> rounds, Func<Measurement, double> value, string format) =>
        Median([.. rounds.Select(value)]).ToString(format, Invariant) + " ms";

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static JsonValue? Number(double value) => double.IsFinite(value) ? JsonValue.Create(Math.Round(value, 4)) : null;
}
