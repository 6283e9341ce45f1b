using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Krustlet.EndToEnd.Benchmarks;

/// <summary>
/// End-to-end benchmarks of the agent (issue #8). Usage:
/// <c>dotnet run -c Release --project bench/EndToEnd.Benchmarks -- [all|latency|cold|caches|throughput|density|density-child|executor|executor-child] [--out DIR] [--quick] [--density-max N]</c>.
/// Writes DIR/e2e.json, DIR/e2e.md and DIR/start-latency-cdf.svg (DIR defaults to docs/benchmarks).
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var options = BenchOptions.Parse(args);
        Directory.CreateDirectory(options.Work);
        var results = new JsonObject
        {
            ["machine"] = Machine.Describe(),
            ["command"] = "dotnet run -c Release --project bench/EndToEnd.Benchmarks -- " + string.Join(' ', args),
            ["started"] = DateTimeOffset.UtcNow.ToString("u", CultureInfo.InvariantCulture),
        };

        if (options.Scenario == "executor-child")
        {
            await ExecutorScenario.ChildAsync(args);
            return 0;
        }

        if (options.Scenario == "density-child")
        {
            await Density.ChildAsync(options);
            return 0;
        }

        if (options.Scenario == "report")
        {
            // Renders the markdown of an earlier run again (and fills in the summary of a density child that died).
            var path = Path.Combine(options.Out, "e2e.json");
            var earlier = JsonNode.Parse(await File.ReadAllTextAsync(path))!.AsObject();
            foreach (var (_, run) in earlier["density"]?.AsObject() ?? [])
            {
                if (run!["summary"] is null)
                {
                    run["summary"] = Density.DiedSummary(run["steps"]!.AsArray(), run["childExitCode"]!.GetValue<int>(), run["childStderr"]!.GetValue<string>());
                }
            }

            await File.WriteAllTextAsync(path, earlier.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            await File.WriteAllTextAsync(Path.Combine(options.Out, "e2e.md"), Report.Markdown(earlier));
            return 0;
        }

        var sleeper = Modules.BuildSleeper(options.Work);
        await using var registry = await BenchRegistry.StartAsync();
        var scenarios = new Scenarios(options, registry.Host, sleeper, results);
        var all = options.Scenario == "all";
        if (all || options.Scenario == "latency")
        {
            await scenarios.FloorAsync();
            await scenarios.WarmLatencyAsync();
        }

        if (all || options.Scenario == "cold")
        {
            await scenarios.ColdLatencyAsync();
            await scenarios.PullDedupeAsync();
        }

        if (all || options.Scenario == "caches")
        {
            await scenarios.AgentCacheAsync();
            await scenarios.RubyCompileCacheAsync();
        }

        if (all || options.Scenario == "throughput")
        {
            await scenarios.ThroughputAsync();
        }

        if (all || options.Scenario == "engine")
        {
            results["engineProbe"] = EngineProbe.Run(sleeper);
        }

        if (all || options.Scenario == "density")
        {
            results["density"] = await Density.RunAsync(options, registry.Host);
        }

        if (options.Scenario == "executor")
        {
            results["executor"] = await ExecutorScenario.RunAsync(options, registry.Host);
        }

        results["finished"] = DateTimeOffset.UtcNow.ToString("u", CultureInfo.InvariantCulture);
        Directory.CreateDirectory(options.Out);
        var json = results.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        var name = options.Scenario == "all" ? "e2e" : $"e2e-{options.Scenario}";
        await File.WriteAllTextAsync(Path.Combine(options.Out, $"{name}.json"), json);
        await File.WriteAllTextAsync(Path.Combine(options.Out, $"{name}.md"), Report.Markdown(results));
        if (scenarios.Cdf.Count > 0)
        {
            await File.WriteAllTextAsync(Path.Combine(options.Out, $"{name}-start-latency-cdf.svg"), Krustlet.Host.Tuning.LatencyChart.Cdf(scenarios.Cdf, "Pod start latency (event submitted → Running written), CDF"));
        }

        Console.WriteLine($"wrote {Path.Combine(options.Out, name)}.json/.md");
        if (!args.Contains("--work"))
        {
            // Pod directories, logs, images and compiled artifacts of every agent of the run.
            Directory.Delete(options.Work, recursive: true);
        }

        return 0;
    }
}

/// <summary>Command-line options.</summary>
internal sealed record BenchOptions(string Scenario, string Out, string Work, bool Quick, int DensityMax, int DensityPeriodMs, string? Ruby, bool Compact, string? Registry)
{
    public static BenchOptions Parse(string[] args)
    {
        var scenario = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "all";
        string Value(string name, string fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        var work = Value("--work", Path.Combine(Path.GetTempPath(), $"krustlet-e2e-{Environment.ProcessId}"));
        return new BenchOptions(
            scenario,
            Path.GetFullPath(Value("--out", Path.Combine("docs", "benchmarks"))),
            work,
            args.Contains("--quick"),
            int.Parse(Value("--density-max", "11000"), CultureInfo.InvariantCulture),
            int.Parse(Value("--density-period-ms", "5000"), CultureInfo.InvariantCulture),
            args.Contains("--ruby") ? Value("--ruby", string.Empty) : null,
            args.Contains("--compact"),
            args.Contains("--registry") ? Value("--registry", string.Empty) : null);
    }

    /// <summary>The pod counts of the scaling figures.</summary>
    public int[] Scales => Quick ? [10, 100] : [10, 100, 1000];
}

/// <summary>The machine the run is on.</summary>
internal static class Machine
{
    public static JsonObject Describe()
    {
        var memTotal = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
        var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
        return new JsonObject
        {
            ["nproc"] = Environment.ProcessorCount,
            ["cpu"] = cpu,
            ["memTotal"] = memTotal.Split(':', 2)[1].Trim(),
            ["kernel"] = File.ReadAllText("/proc/sys/kernel/osrelease").Trim(),
            ["dotnet"] = Environment.Version.ToString(),
            ["wasmtime"] = Krustlet.Stages.Compile.WasmEngineHost.WasmtimeVersion,
            ["maxMapCount"] = File.ReadAllText("/proc/sys/vm/max_map_count").Trim(),
            ["pidMax"] = File.ReadAllText("/proc/sys/kernel/pid_max").Trim(),
            ["threadsMax"] = File.ReadAllText("/proc/sys/kernel/threads-max").Trim(),
            ["loadavg"] = File.ReadAllText("/proc/loadavg").Trim(),
        };
    }
}

/// <summary>Small helpers for JSON numbers.</summary>
internal static class Json
{
    public static JsonObject Of(Stats s) => new()
    {
        ["n"] = s.Count,
        ["p50Ms"] = Round(s.P50),
        ["p90Ms"] = Round(s.P90),
        ["p99Ms"] = Round(s.P99),
        ["maxMs"] = Round(s.Max),
        ["meanMs"] = Round(s.Mean),
    };

    public static double Round(double v) => double.IsNaN(v) ? -1 : Math.Round(v, 4);

    public static double Ms(long start, long end) => Stopwatch.GetElapsedTime(start, end).TotalMilliseconds;
}
