using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.EndToEnd.Benchmarks;

/// <summary>
/// Density: long-running sleeper pods added in steps until the target or the first failure, sampling the
/// process after each step. Runs in a child process so that hitting a limit of the machine cannot take
/// the rest of the run with it; the child prints one JSON line per step.
/// </summary>
internal static class Density
{
    private const string Prefix = "DENSITY ";

    /// <summary>Density with the default engine, then with compact memories: before and after the tuning, in one run.</summary>
    public static async Task<JsonObject> RunAsync(BenchOptions options, string registryHost) => new()
    {
        ["defaults"] = await RunChildAsync(options, registryHost, compact: false),
        ["compact memories"] = await RunChildAsync(options, registryHost, compact: true),
    };

    private static async Task<JsonObject> RunChildAsync(BenchOptions options, string registryHost, bool compact)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!);
        var args = new List<string> { "density-child", "--work", Path.Combine(options.Work, compact ? "density-compact" : "density"), "--density-max", options.DensityMax.ToString(CultureInfo.InvariantCulture), "--density-period-ms", options.DensityPeriodMs.ToString(CultureInfo.InvariantCulture), "--registry", registryHost };
        if (compact)
        {
            args.Add("--compact");
        }

        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var child = await BenchChild.RunAsync(start, Prefix, "density");
        var steps = new JsonArray([.. child.Lines.Where(l => !l.ContainsKey("summary"))]);
        var summary = child.Lines.LastOrDefault(l => l.ContainsKey("summary")) ?? DiedSummary(steps, child.ExitCode, child.Stderr);
        return new JsonObject
        {
            ["engine"] = compact ? "Wasm:CompactMemories = true" : "defaults",
            ["what"] = $"sleeper pods (wake every {options.DensityPeriodMs} ms, restartPolicy Always) added in steps; after each step every container holds an executor slot; then the agent idles for 10 s",
            ["wakePeriodMs"] = options.DensityPeriodMs,
            ["steps"] = steps,
            ["summary"] = summary,
            ["childExitCode"] = child.ExitCode,
            ["childStderr"] = child.StderrExcerpt,
        };
    }

    /// <summary>
    /// The summary of a child that died before writing its own: the last step every pod reached, and the
    /// runtime's own words about why it died (the lines of its standard error that are not stack frames).
    /// </summary>
    public static JsonObject DiedSummary(JsonArray steps, int exitCode, string stderr)
    {
        var last = steps.LastOrDefault(s => s!["baseline"] is null);
        var why = string.Join(" / ", stderr.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith("at ", StringComparison.Ordinal) && !l.StartsWith("stack backtrace", StringComparison.Ordinal)).Take(4));
        return new JsonObject
        {
            ["summary"] = true,
            ["maxPodsAllRunning"] = last?["pods"]?.GetValue<int>() ?? 0,
            ["limit"] = $"the agent process died (exit code {exitCode}) while adding the next step: {why}",
            ["shutdownMs"] = -1,
        };
    }

    public static async Task ChildAsync(BenchOptions options)
    {
        Directory.CreateDirectory(options.Work);
        var sleeper = Modules.BuildSleeper(options.Work);
        // The parent's registry: a child that dies (the point of running it apart) leaves nothing behind.
        var registryHost = options.Registry ?? throw new InvalidOperationException("density-child needs --registry HOST:PORT");
        var registryOptions = new RegistryOptions { InsecureRegistries = new HashSet<string>([registryHost], StringComparer.OrdinalIgnoreCase) };
        var image = $"{registryHost}/bench/density-{(options.Compact ? "compact" : "default")}:v1";
        using (var client = new OciRegistryClient(registryOptions))
        {
            await WasmArtifactPusher.PushAsync(client, ImageReference.Parse(image), sleeper, null, CancellationToken.None);
        }

        var agent = Agent.Start(new AgentSettings(Path.Combine(options.Work, "agent"), options.DensityMax + 100, Wasm: new Krustlet.Stages.Compile.WasmEngineOptions { CompactMemories = options.Compact }), registryHost);
        var prime = Pods.Sleeper("density-prime", image, options.DensityPeriodMs);
        await Agent.WaitRunningAsync(agent.Add([prime]), TimeSpan.FromMinutes(2));
        await agent.DeleteAsync([prime], TimeSpan.FromMinutes(2));
        GC.Collect();
        await Task.Delay(1000);
        var baseline = ProcessSample.Take();
        Emit(new JsonObject { ["baseline"] = true, ["pods"] = 0, ["rssKiB"] = baseline.RssKiB, ["vmSizeKiB"] = baseline.VmSizeKiB, ["threads"] = baseline.Threads, ["openFiles"] = baseline.OpenFiles, ["maps"] = baseline.Maps });

        // Finer steps past 5,000, where the address-space mappings run out.
        var targets = new List<int> { 10, 100, 1000 };
        for (var n = 2000; n <= options.DensityMax; n += n < 5000 ? 1000 : 500)
        {
            targets.Add(n);
        }

        targets.RemoveAll(t => t > options.DensityMax);
        var pods = new List<k8s.Models.V1Pod>();
        string? limit = null;
        var reached = 0;
        foreach (var target in targets)
        {
            var added = Enumerable.Range(pods.Count, target - pods.Count).Select(i => Pods.Sleeper(string.Create(CultureInfo.InvariantCulture, $"density-{i}"), image, options.DensityPeriodMs)).ToList();
            pods.AddRange(added);
            var begin = Stopwatch.GetTimestamp();
            var tracks = agent.Add(added);
            try
            {
                await Agent.WaitRunningAsync(tracks, TimeSpan.FromMinutes(5));
            }
            catch (Exception ex) when (ex is InvalidOperationException or TimeoutException)
            {
                limit = $"at {target} pods: {ex.Message}";
                break;
            }

            var running = Json.Ms(begin, Stopwatch.GetTimestamp());

            // Running is reported when a container is handed to the executor pool; wait for every one to hold a slot.
            var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 120;
            while (agent.Pool.Running < target && Stopwatch.GetTimestamp() < deadline)
            {
                await Task.Delay(100);
            }

            var inSlots = agent.Pool.Running;
            await Task.Delay(2000);
            var before = ProcessSample.Take();
            var idleStart = Stopwatch.GetTimestamp();
            await Task.Delay(10_000);
            var after = ProcessSample.Take();

            // Kept to see what the address-space mappings are (the first limit is vm.max_map_count).
            await File.WriteAllTextAsync(Path.Combine(options.Work, string.Create(CultureInfo.InvariantCulture, $"maps-{target}.txt")), await File.ReadAllTextAsync("/proc/self/maps"));
            var idleSeconds = Stopwatch.GetElapsedTime(idleStart).TotalSeconds;
            var cpu = (after.CpuTicks - before.CpuTicks) / ProcessSample.TicksPerSecond / idleSeconds;
            var failedNow = tracks.Count(t => t.Failed.Task.IsCompleted);
            Emit(new JsonObject
            {
                ["pods"] = target,
                ["containersInSlots"] = inSlots,
                ["addStepMs"] = Json.Round(running),
                ["rssKiB"] = after.RssKiB,
                ["rssPerPodKiB"] = Json.Round((after.RssKiB - baseline.RssKiB) / (double)target),
                ["vmSizeKiB"] = after.VmSizeKiB,
                ["vmSizePerPodMiB"] = Json.Round((after.VmSizeKiB - baseline.VmSizeKiB) / 1024.0 / target),
                ["threads"] = after.Threads,
                ["openFiles"] = after.OpenFiles,
                ["maps"] = after.Maps,
                ["mapsPerPod"] = Json.Round((after.Maps - baseline.Maps) / (double)target),
                ["idleCpuCores"] = Json.Round(cpu),
                ["failedPods"] = failedNow,
            });
            if (inSlots < target)
            {
                limit = $"at {target} pods only {inSlots} containers held an executor slot after 120 s";
                break;
            }

            reached = target;
        }

        var stopStart = Stopwatch.GetTimestamp();
        var stop = agent.DisposeAsync().AsTask();
        var stopped = await Task.WhenAny(stop, Task.Delay(TimeSpan.FromMinutes(3))) == stop;
        Emit(new JsonObject
        {
            ["summary"] = true,
            ["maxPodsAllRunning"] = reached,
            ["limit"] = limit ?? $"none hit up to the target {options.DensityMax}",
            ["shutdownMs"] = stopped ? Json.Round(Json.Ms(stopStart, Stopwatch.GetTimestamp())) : -1,
        });
        Environment.Exit(0);
    }

    private static void Emit(JsonObject line) => BenchChild.Emit(Prefix, line);
}
