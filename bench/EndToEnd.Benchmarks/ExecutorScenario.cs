using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.EndToEnd.Benchmarks;

/// <summary>
/// The M:N executor (issue #14), each part in a child process of its own so that a limit of the machine
/// ends only that part: sleeping pods added in steps (threads, mappings, resident memory per pod, idle
/// CPU), with the default engine and with compact memories; 2,000 tickers printing a line a second
/// (agent CPU); deleting 10,000 sleeping pods (delete → every final report).
/// </summary>
internal static class ExecutorScenario
{
    private const string Prefix = "EXECUTOR ";

    /// <summary>Milliseconds a "sleeping" pod sleeps between wake-ups: an hour, so none wakes while measured.</summary>
    private const int Asleep = 3_600_000;

    /// <summary>Runs every part, or those named in BENCH_EXECUTOR_ONLY (comma-separated: sleep, compact, tick, stop).</summary>
    public static async Task<JsonObject> RunAsync(BenchOptions options, string registryHost)
    {
        var only = Environment.GetEnvironmentVariable("BENCH_EXECUTOR_ONLY")?.Split(',') ?? ["sleep", "compact", "tick", "stop"];
        var result = new JsonObject();
        if (only.Contains("sleep"))
        {
            result["sleeping pods, default engine"] = await ChildAsync(options, registryHost, "sleep", Math.Min(options.DensityMax, 10_000), compact: false);
        }

        if (only.Contains("compact"))
        {
            result["sleeping pods, compact memories (Wasm:MaxContainerMemory 16 MiB)"] = await ChildAsync(options, registryHost, "sleep", options.DensityMax, compact: true);
        }

        if (only.Contains("tick"))
        {
            // 200 and 2,000 side by side: the cost of one log line must not grow with the number of pods.
            result["200 tickers at one line per second"] = await ChildAsync(options, registryHost, "tick", 200, compact: false);
            result["2,000 tickers at one line per second"] = await ChildAsync(options, registryHost, "tick", 2000, compact: false);
        }

        if (only.Contains("stop"))
        {
            // Compact memories: 10,000 default slots (8 GiB of address space each) do not fit.
            result["delete 10,000 sleeping pods (compact memories)"] = await ChildAsync(options, registryHost, "stop", 10_000, compact: true);
        }

        return result;
    }

    private static async Task<JsonObject> ChildAsync(BenchOptions options, string registryHost, string mode, int pods, bool compact)
    {
        // Every running container keeps its log file open: raise the descriptor limit for the child.
        var start = new ProcessStartInfo("bash");
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("ulimit -Hn 1048576 2>/dev/null; ulimit -n 1048576 2>/dev/null || ulimit -n $(ulimit -Hn); exec \"$0\" \"$@\"");
        start.ArgumentList.Add(Environment.ProcessPath!);
        foreach (var arg in (string[])["executor-child", "--work", Path.Combine(options.Work, $"executor-{mode}-{(compact ? "compact" : "default")}"), "--density-max", pods.ToString(CultureInfo.InvariantCulture), "--registry", registryHost, "--mode", mode])
        {
            start.ArgumentList.Add(arg);
        }

        if (compact)
        {
            start.ArgumentList.Add("--compact");
        }

        var child = await BenchChild.RunAsync(start, Prefix, $"executor {mode}");
        return new JsonObject
        {
            ["mode"] = mode,
            ["engine"] = compact ? "Wasm:CompactMemories = true, Wasm:MaxContainerMemory = 16 MiB" : "defaults",
            ["vm.max_map_count"] = File.ReadAllText("/proc/sys/vm/max_map_count").Trim(),
            ["samples"] = new JsonArray([.. child.Lines]),
            ["childExitCode"] = child.ExitCode,
            ["childStderr"] = child.StderrExcerpt,
        };
    }

    public static async Task ChildAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var mode = args[Array.IndexOf(args, "--mode") + 1];
        Directory.CreateDirectory(options.Work);
        var sleeper = Modules.BuildSleeper(options.Work);
        var registryHost = options.Registry ?? throw new InvalidOperationException("executor-child needs --registry HOST:PORT");
        var registryOptions = new RegistryOptions { InsecureRegistries = new HashSet<string>([registryHost], StringComparer.OrdinalIgnoreCase) };
        var image = $"{registryHost}/bench/executor-{mode}:v1";
        using (var client = new OciRegistryClient(registryOptions))
        {
            await WasmArtifactPusher.PushAsync(client, ImageReference.Parse(image), sleeper, null, CancellationToken.None);
        }

        var wasm = new Krustlet.Stages.Compile.WasmEngineOptions
        {
            CompactMemories = options.Compact,
            MaxContainerMemory = options.Compact ? 16L * 1024 * 1024 : Krustlet.Stages.Compile.WasmEngineOptions.DefaultMaxContainerMemory,
        };
        var agent = Agent.Start(new AgentSettings(Path.Combine(options.Work, "agent"), options.DensityMax + 100, Wasm: wasm), registryHost);
        var prime = Pods.Sleeper("executor-prime", image, 1);
        await Agent.WaitRunningAsync(agent.Add([prime]), TimeSpan.FromMinutes(2));
        await agent.DeleteAsync([prime], TimeSpan.FromMinutes(2));
        GC.Collect();
        await Task.Delay(1000);
        var baseline = ProcessSample.Take();
        Emit(Sample("baseline", 0, baseline, baseline, double.NaN, agent));

        var added = new List<k8s.Models.V1Pod>();
        async Task<bool> GrowTo(int target, Func<int, k8s.Models.V1Pod> make)
        {
            var batch = Enumerable.Range(added.Count, target - added.Count).Select(make).ToList();
            added.AddRange(batch);
            var begin = Stopwatch.GetTimestamp();
            try
            {
                await Agent.WaitRunningAsync(agent.Add(batch), TimeSpan.FromMinutes(10));
            }
            catch (Exception ex) when (ex is InvalidOperationException or TimeoutException)
            {
                Emit(new JsonObject { ["limit"] = $"at {target} pods: {ex.Message}" });
                return false;
            }

            // Running is reported when a container is handed to the executor; wait until each runs there.
            var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 300;
            while (agent.Pool.LiveGuests < target && Stopwatch.GetTimestamp() < deadline)
            {
                await Task.Delay(100);
            }

            Emit(new JsonObject { ["pods"] = target, ["addMs"] = Json.Round(Json.Ms(begin, Stopwatch.GetTimestamp())), ["onExecutor"] = agent.Pool.LiveGuests });
            return agent.Pool.LiveGuests >= target;
        }

        async Task Measure(string what, int pods, int seconds)
        {
            // The .NET thread pool retires the workers it added for the burst after 20 s idle: count
            // the agent's threads once it has.
            await Task.Delay(mode == "sleep" ? 22_000 : 2000);
            GC.Collect();
            var before = ProcessSample.Take();
            var idle = Stopwatch.GetTimestamp();
            await Task.Delay(seconds * 1000);
            var after = ProcessSample.Take();
            var cpu = (after.CpuTicks - before.CpuTicks) / ProcessSample.TicksPerSecond / Stopwatch.GetElapsedTime(idle).TotalSeconds;
            Emit(Sample(what, pods, after, baseline, cpu, agent));
        }

        switch (mode)
        {
            case "sleep":
                foreach (var target in (int[])[100, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000])
                {
                    if (target > options.DensityMax || !await GrowTo(target, i => Pods.Sleeper($"sleep-{i}", image, Asleep)))
                    {
                        break;
                    }

                    await Measure("sleeping", target, 5);
                }

                break;
            case "tick":
                if (await GrowTo(options.DensityMax, i => Pods.Ticker($"tick-{i}", image, 1000)))
                {
                    await Measure("ticking", options.DensityMax, 20);
                }

                break;
            case "stop":
                // Twice: the first delete burst also pays for compiling the teardown path (tiered JIT).
                for (var round = 1; round <= 2; round++)
                {
                    added.Clear();
                    if (!await GrowTo(options.DensityMax, i => Pods.Sleeper($"stop-{round}-{i}", image, Asleep)))
                    {
                        break;
                    }

                    var begin = Stopwatch.GetTimestamp();
                    var deleting = agent.DeleteAsync(added, TimeSpan.FromMinutes(5));
                    // "None Running": the moment the last container has ended on the executor (sampled every 5 ms).
                    var noneRunning = double.NaN;
                    while (!deleting.IsCompleted || double.IsNaN(noneRunning))
                    {
                        if (double.IsNaN(noneRunning) && agent.Pool.LiveGuests == 0)
                        {
                            noneRunning = Json.Ms(begin, Stopwatch.GetTimestamp());
                        }

                        await Task.WhenAny(deleting, Task.Delay(5));
                    }

                    await deleting;
                    Emit(new JsonObject { ["round"] = round, ["deleted"] = options.DensityMax, ["deleteToNoneRunningMs"] = Json.Round(noneRunning), ["deleteToAllFinalMs"] = Json.Round(Json.Ms(begin, Stopwatch.GetTimestamp())), ["onExecutorAfter"] = agent.Pool.LiveGuests });
                }

                break;
        }

        Environment.Exit(0);
    }

    private static JsonObject Sample(string what, int pods, ProcessSample now, ProcessSample baseline, double cpu, Agent agent) => new()
    {
        ["what"] = what,
        ["pods"] = pods,
        ["rssKiB"] = now.RssKiB,
        ["rssPerPodKiB"] = pods == 0 ? 0 : Json.Round((now.RssKiB - baseline.RssKiB) / (double)pods),
        ["threads"] = now.Threads,
        ["threadsOverBaseline"] = now.Threads - baseline.Threads,
        ["executorThreads"] = agent.Engine.Native.Scheduler.Threads,
        ["maps"] = now.Maps,
        ["mapsOverBaseline"] = now.Maps - baseline.Maps,
        ["openFiles"] = now.OpenFiles,
        ["cpuCores"] = double.IsNaN(cpu) ? null : Json.Round(cpu),
        ["parked"] = agent.Engine.Native.Scheduler.ParkedGuests,
    };

    private static void Emit(JsonObject line) => BenchChild.Emit(Prefix, line);
}
