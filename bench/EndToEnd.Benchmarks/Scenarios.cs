using Krustlet.Stages.Run.Executor;
using Krustlet.Stages.Wasmtime.Native;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Replay;
using Krustlet.Stages;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;
using Krustlet.Stages.PodEvents;
using Krustlet.Stages.Run;
using Wasmtime;

namespace Krustlet.EndToEnd.Benchmarks;

/// <summary>The measurements, each writing its part of the results.</summary>
internal sealed class Scenarios(BenchOptions options, string registryHost, string sleeper, JsonObject results)
{
    /// <summary>Wake-up period of the latency pods: short, so deleting them is quick (a sleeping guest is killed when it wakes).</summary>
    private const int LatencyPeriodMs = 100;

    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);

    private int _agents;

    /// <summary>Start latency samples (ms) for the CDF plot, by series name.</summary>
    public Dictionary<string, IReadOnlyList<double>> Cdf { get; } = new(StringComparer.Ordinal);

    private string NewDataDirectory() => Path.Combine(options.Work, string.Create(CultureInfo.InvariantCulture, $"agent-{_agents++}"));

    private async Task<string> PushAsync(string repository, string module)
    {
        var registryOptions = new RegistryOptions { InsecureRegistries = new HashSet<string>([registryHost], StringComparer.OrdinalIgnoreCase) };
        using var client = new OciRegistryClient(registryOptions);
        var image = $"{registryHost}/{repository}:v1";
        await WasmArtifactPusher.PushAsync(client, ImageReference.Parse(image), module, null, CancellationToken.None);
        return image;
    }

    private static void Log(string message) => Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");

    /// <summary>Bare Wasmtime instantiate-and-run of the sleeper (returning at once) in a loop, and the same run through the executor pool.</summary>
    public async Task FloorAsync()
    {
        Log("floor");
        using var host = new WasmEngineHost(new WasmEngineOptions());
        var artifact = await new CompileCache(host, Path.Combine(options.Work, "floor-cache")).GetAsync(Modules.Digest(sleeper), sleeper, CancellationToken.None);
        using var linker = new Linker(host.Engine);
        linker.DefineWasi();
        var iterations = options.Quick ? 200 : 2000;
        var bare = new List<double>();
        for (var i = 0; i < iterations + 100; i++)
        {
            var start = Stopwatch.GetTimestamp();
            BareRun.Run(host.Native, artifact.InstancePre!, new NativeWasiOptions { Args = ["sleeper", "0"] });

            if (i >= 100)
            {
                bare.Add(Json.Ms(start, Stopwatch.GetTimestamp()));
            }
        }

        // Where the executor pool's extra time goes: the same bare run with its own Linker (as every
        // container run makes one), then also on a dedicated 4 MiB-stack thread (as the pool starts one).
        var ownLinker = new List<double>();
        var ownThread = new List<double>();
        for (var i = 0; i < iterations + 100; i++)
        {
            var start = Stopwatch.GetTimestamp();
            RunWithOwnLinker(host, artifact);
            if (i >= 100)
            {
                ownLinker.Add(Json.Ms(start, Stopwatch.GetTimestamp()));
            }

            start = Stopwatch.GetTimestamp();
            var thread = new Thread(() => RunWithOwnLinker(host, artifact), 4 * 1024 * 1024);
            thread.Start();
            thread.Join();
            if (i >= 100)
            {
                ownThread.Add(Json.Ms(start, Stopwatch.GetTimestamp()));
            }
        }

        using var pool = new ExecutorPool(host, 4);
        var logs = Path.Combine(options.Work, "floor-logs");
        var pooled = new List<double>();
        for (var i = 0; i < iterations + 100; i++)
        {
            var start = Stopwatch.GetTimestamp();
            var launch = new ContainerLaunch("sleeper", artifact, ["sleeper", "0"], [], [], null, Path.Combine(logs, $"{i % 64}.log"), LogRotationOptions.Default);
            var exit = await pool.RunAsync(launch, new ContainerControl(TimeProvider.System));
            if (exit.Kind != ExitKind.Exited)
            {
                throw new InvalidOperationException($"the floor run ended {exit.Kind}: {exit.Message}");
            }

            if (i >= 100)
            {
                pooled.Add(Json.Ms(start, Stopwatch.GetTimestamp()));
            }
        }

        results["floor"] = new JsonObject
        {
            ["what"] = "instantiate + _start of the sleeper module with argument 0 (returns at once), already compiled, same process",
            ["bareWasmtime"] = Json.Of(Stats.Of(bare)),
            ["bareWithOwnLinker"] = Json.Of(Stats.Of(ownLinker)),
            ["bareWithOwnLinkerOnNewThread"] = Json.Of(Stats.Of(ownThread)),
            ["executorPool"] = Json.Of(Stats.Of(pooled)),
        };
        Cdf["floor: bare Wasmtime run"] = bare;
        Cdf["executor pool run"] = pooled;
    }

    private static void RunWithOwnLinker(WasmEngineHost host, CompiledArtifact artifact)
    {
        // The InstancePre is the module's own; a fresh one per run stands for a new linker per run.
        using var pre = host.Native.Linker.Prepare(artifact.Module!);
        BareRun.Run(host.Native, pre, new NativeWasiOptions { Args = ["sleeper", "0"] });
    }

    /// <summary>Start latency of bursts of pods whose image is already pulled and compiled, with the default stage settings and the tuned ones side by side.</summary>
    public async Task WarmLatencyAsync()
    {
        var image = await PushAsync("bench/sleeper-warm", sleeper);
        var all = new JsonObject();
        var rounds = options.Quick ? 1 : 2;
        foreach (var (variant, stages, wasm) in Enumerable.Range(1, rounds).SelectMany(_ => Tuning.Variants))
        {
            var label = all.ContainsKey(variant) ? $"{variant} (round 2)" : variant;
            var podPrefix = $"warm-{label.Replace(' ', '-').Replace("(", string.Empty, StringComparison.Ordinal).Replace(")", string.Empty, StringComparison.Ordinal)}";
            var byScale = new JsonObject();
            await using (var agent = Agent.Start(new AgentSettings(NewDataDirectory(), 4000, stages, wasm), registryHost))
            {
                // Pull and compile once, then delete: every measured pod finds both cached.
                var warm = Pods.Sleeper($"{podPrefix}-prime", image, LatencyPeriodMs);
                await Agent.WaitRunningAsync(agent.Add([warm]), Timeout);
                await agent.DeleteAsync([warm], Timeout);
                foreach (var n in options.Scales)
                {
                    Log($"warm burst {label} {n}");
                    var pods = Enumerable.Range(0, n).Select(i => Pods.Sleeper($"{podPrefix}-{n}-{i}", image, LatencyPeriodMs)).ToList();
                    var begin = Stopwatch.GetTimestamp();
                    var tracks = agent.Add(pods);
                    await Agent.WaitRunningAsync(tracks, Timeout);
                    var burst = Json.Ms(begin, Stopwatch.GetTimestamp());
                    var latencies = tracks.Select(t => t.StartMilliseconds).ToList();
                    var deleteStart = Stopwatch.GetTimestamp();
                    await agent.DeleteAsync(pods, Timeout);
                    var deleted = Json.Ms(deleteStart, Stopwatch.GetTimestamp());
                    var stats = Json.Of(Stats.Of(latencies));
                    stats["burstMs"] = Json.Round(burst);
                    stats["podsPerSecond"] = Json.Round(n / (burst / 1000));
                    stats["deleteAllMs"] = Json.Round(deleted);
                    byScale[n.ToString(CultureInfo.InvariantCulture)] = stats;
                    if (n == options.Scales[^1] && label == variant)
                    {
                        Cdf[$"warm burst of {n} ({label})"] = latencies;
                    }
                }
            }

            all[label] = byScale;
        }

        results["warmStart"] = all;
    }

    /// <summary>Start latency of pods whose image must be pulled from the registry and compiled: one pod at a time, each a new image.</summary>
    public async Task ColdLatencyAsync()
    {
        var count = options.Quick ? 5 : 20;
        var latencies = new List<double>();
        await using (var agent = Agent.Start(new AgentSettings(NewDataDirectory(), 4000), registryHost))
        {
            var pods = new List<V1Pod>();
            for (var i = 0; i < count; i++)
            {
                var module = Modules.WithNonce(sleeper, options.Work, string.Create(CultureInfo.InvariantCulture, $"cold-{i}"));
                var image = await PushAsync(string.Create(CultureInfo.InvariantCulture, $"bench/cold-{i}"), module);
                var pod = Pods.Sleeper($"cold-{i}", image, LatencyPeriodMs);
                pods.Add(pod);
                var tracks = agent.Add([pod]);
                await Agent.WaitRunningAsync(tracks, Timeout);
                latencies.Add(tracks[0].StartMilliseconds);
            }

            await agent.DeleteAsync(pods, Timeout);
        }

        Log("cold sequential done");
        var stats = Json.Of(Stats.Of(latencies));
        stats["what"] = "one pod at a time, each with its own image (pull from the loopback registry + compile + start)";
        results["coldStart"] = stats;
        Cdf["cold image, one pod at a time (pull + compile)"] = latencies;
    }

    /// <summary>Bursts of pods sharing one image that is not pulled yet: registry requests and start latency.</summary>
    public async Task PullDedupeAsync()
    {
        var byScale = new JsonObject();
        foreach (var n in options.Scales)
        {
            Log($"cold burst {n}");
            var module = Modules.WithNonce(sleeper, options.Work, string.Create(CultureInfo.InvariantCulture, $"shared-{n}"));
            var image = await PushAsync(string.Create(CultureInfo.InvariantCulture, $"bench/shared-{n}"), module);
            await using var agent = Agent.Start(new AgentSettings(NewDataDirectory(), 4000), registryHost);
            var pods = Enumerable.Range(0, n).Select(i => Pods.Sleeper($"shared-{n}-{i}", image, LatencyPeriodMs)).ToList();
            var begin = Stopwatch.GetTimestamp();
            var tracks = agent.Add(pods);
            await Agent.WaitRunningAsync(tracks, Timeout);
            var burst = Json.Ms(begin, Stopwatch.GetTimestamp());
            var stats = Json.Of(Stats.Of(tracks.Select(t => t.StartMilliseconds).ToList()));
            stats["burstMs"] = Json.Round(burst);
            stats["registryRequests"] = agent.Requests.Requests;
            stats["manifestGets"] = agent.Requests.ManifestGets;
            stats["blobGets"] = agent.Requests.BlobGets;
            stats["compiles"] = agent.Cache.Compiles;
            byScale[n.ToString(CultureInfo.InvariantCulture)] = stats;
            await agent.DeleteAsync(pods, Timeout);
        }

        results["coldBurst"] = byScale;
    }

    /// <summary>First start vs cached starts of a runnable module through the whole agent, including a restarted agent.</summary>
    public async Task AgentCacheAsync()
    {
        var repetitions = options.Quick ? 2 : 5;
        var cold = new List<double>();
        var memory = new List<double>();
        var restart = new List<double>();
        var restartNoCompileCache = new List<double>();
        for (var r = 0; r < repetitions; r++)
        {
            Log($"agent cache {r}");
            var module = Modules.WithNonce(sleeper, options.Work, string.Create(CultureInfo.InvariantCulture, $"cache-{r}"));
            var image = await PushAsync(string.Create(CultureInfo.InvariantCulture, $"bench/cache-{r}"), module);
            var dir = NewDataDirectory();
            async Task<double> StartOneAsync(Agent agent, string name)
            {
                var pod = Pods.Sleeper(name, image, LatencyPeriodMs);
                var tracks = agent.Add([pod]);
                await Agent.WaitRunningAsync(tracks, Timeout);
                await agent.DeleteAsync([pod], Timeout);
                return tracks[0].StartMilliseconds;
            }

            await using (var agent = Agent.Start(new AgentSettings(dir, 100), registryHost))
            {
                cold.Add(await StartOneAsync(agent, $"cache-{r}-a"));
                memory.Add(await StartOneAsync(agent, $"cache-{r}-b"));
            }

            await using (var agent = Agent.Start(new AgentSettings(dir, 100), registryHost))
            {
                restart.Add(await StartOneAsync(agent, $"cache-{r}-c"));
            }

            Directory.Delete(Path.Combine(dir, "compile-cache"), recursive: true);
            await using (var agent = Agent.Start(new AgentSettings(dir, 100), registryHost))
            {
                restartNoCompileCache.Add(await StartOneAsync(agent, $"cache-{r}-d"));
            }
        }

        results["agentCache"] = new JsonObject
        {
            ["what"] = "start latency of one pod of the sleeper (12 KB module) through the whole agent",
            ["coldPullAndCompile"] = Json.Of(Stats.Of(cold)),
            ["restartedAgentImageStoredCompileFromScratch"] = Json.Of(Stats.Of(restartNoCompileCache)),
            ["restartedAgentDiskCompileCache"] = Json.Of(Stats.Of(restart)),
            ["sameAgentMemoryCache"] = Json.Of(Stats.Of(memory)),
        };
    }

    /// <summary>Compile vs cached loads of a large real module (Ruby 3.4 with its stdlib, from npm).</summary>
    public async Task RubyCompileCacheAsync()
    {
        var ruby = options.Ruby ?? FetchRuby();
        Log($"ruby compile cache ({new FileInfo(ruby).Length} bytes)");
        var digest = Modules.Digest(ruby);
        using var host = new WasmEngineHost(new WasmEngineOptions());
        var dir = Path.Combine(options.Work, "ruby-cache");
        var start = Stopwatch.GetTimestamp();
        var cache = new CompileCache(host, dir);
        await cache.GetAsync(digest, ruby, CancellationToken.None);
        var compile = Json.Ms(start, Stopwatch.GetTimestamp());
        var disk = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            start = Stopwatch.GetTimestamp();
            await new CompileCache(host, dir).GetAsync(digest, ruby, CancellationToken.None);
            disk.Add(Json.Ms(start, Stopwatch.GetTimestamp()));
        }

        var memory = new List<double>();
        for (var i = 0; i < 1000; i++)
        {
            start = Stopwatch.GetTimestamp();
            await cache.GetAsync(digest, ruby, CancellationToken.None);
            memory.Add(Json.Ms(start, Stopwatch.GetTimestamp()));
        }

        results["rubyCompileCache"] = new JsonObject
        {
            ["module"] = "@ruby/3.4-wasm-wasi dist/ruby+stdlib.wasm",
            ["bytes"] = new FileInfo(ruby).Length,
            ["artifactBytes"] = new FileInfo(cache.PathFor(digest)).Length,
            ["compileMs"] = Json.Round(compile),
            ["diskCache"] = Json.Of(Stats.Of(disk)),
            ["memoryCache"] = Json.Of(Stats.Of(memory)),
        };
    }

    private string FetchRuby()
    {
        var dir = Path.Combine(options.Work, "ruby");
        Directory.CreateDirectory(dir);
        var tarball = Tool.Run("npm", dir, "pack", "--silent", "@ruby/3.4-wasm-wasi").Trim().Split('\n')[^1];
        Tool.Run("tar", dir, "xzf", tarball, "package/dist/ruby+stdlib.wasm");
        return Path.Combine(dir, "package", "dist", "ruby+stdlib.wasm");
    }

    /// <summary>100,000 recorded watch events replayed through the whole agent, over 10, 100 and 1,000 pods.</summary>
    public async Task ThroughputAsync()
    {
        const int Events = 100_000;
        var image = await PushAsync("bench/sleeper-replay", sleeper);
        var byScale = new JsonObject();
        foreach (var pods in options.Scales)
        {
            Log($"replay {Events} events over {pods} pods");
            var file = Path.Combine(options.Work, string.Create(CultureInfo.InvariantCulture, $"replay-{pods}.ndjson"));
            WriteReplay(file, image, pods, Events);

            // The source's own cost: reading and decoding the recorded stream with no pipeline behind it.
            var readOnly = Stopwatch.GetTimestamp();
            var decoded = 0;
            await foreach (var _ in WatchStreamReplaySource<V1Pod>.FromFile(file, PodWatchDecoder.Instance).ReadAsync(CancellationToken.None))
            {
                decoded++;
            }

            var sourceOnlyMs = Json.Ms(readOnly, Stopwatch.GetTimestamp());
            var writer = new TimingWriter();
            var objects = Enumerable.Range(0, pods).Select(p => Pods.Sleeper(string.Create(CultureInfo.InvariantCulture, $"replay-{pods}-{p}"), image, 50)).ToList();
            var tracks = objects.Select(p => writer.Track(p.Metadata.Uid)).ToList();
            var source = WatchStreamReplaySource<V1Pod>.FromFile(file, PodWatchDecoder.Instance);
            var start = Stopwatch.GetTimestamp();
            double readMs;
            await using (var agent = Agent.Start(new AgentSettings(NewDataDirectory(), 4000), registryHost, writer, source))
            {
                await agent.SourceDone;
                readMs = Json.Ms(start, Stopwatch.GetTimestamp());
                await Task.WhenAll(tracks.Select(t => t.Deleted.Task)).WaitAsync(Timeout);
                await agent.Pipeline.WaitForIdleAsync();
            }

            var total = Json.Ms(start, Stopwatch.GetTimestamp());
            byScale[pods.ToString(CultureInfo.InvariantCulture)] = new JsonObject
            {
                ["events"] = source.Played,
                ["sourceAloneMs"] = Json.Round(sourceOnlyMs),
                ["sourceAloneEventsPerSecond"] = Json.Round(decoded / (sourceOnlyMs / 1000)),
                ["sourceReadMs"] = Json.Round(readMs),
                ["totalMs"] = Json.Round(total),
                ["eventsPerSecond"] = Json.Round(source.Played / (total / 1000)),
                ["workItemsApplied"] = writer.Applied,
                ["statusWrites"] = writer.Writes,
                ["podsRunningAtSomePoint"] = tracks.Count(t => t.Running.Task.IsCompletedSuccessfully),
            };
        }

        results["throughput"] = new JsonObject
        {
            ["what"] = "a recorded watch stream replayed as fast as possible through the whole agent: per pod ADDED, MODIFIED (new resourceVersion) repeatedly, DELETED, round-robin over the pods; every stage real (admission, pull from the loopback registry, compile cache, volume directories, containers started and killed); time until every pod's final report is written",
            ["byPods"] = byScale,
        };
    }

    private static void WriteReplay(string file, string image, int pods, int events)
    {
        var perPod = events / pods;
        using var output = new StreamWriter(file);
        for (var round = 0; round < perPod; round++)
        {
            for (var p = 0; p < pods; p++)
            {
                var type = round == 0 ? "ADDED" : round == perPod - 1 ? "DELETED" : "MODIFIED";
                var pod = Pods.Sleeper(string.Create(CultureInfo.InvariantCulture, $"replay-{pods}-{p}"), image, 50, (round + 1).ToString(CultureInfo.InvariantCulture));
                output.Write("{\"type\":\"");
                output.Write(type);
                output.Write("\",\"object\":");
                output.Write(KubernetesJson.Serialize(pod));
                output.WriteLine('}');
            }
        }
    }
}

/// <summary>The stage settings compared side by side: the agent's defaults and the tuned ones.</summary>
internal static class Tuning
{
    public static IReadOnlyList<(string Label, IReadOnlyDictionary<string, StageOptions>? Stages, WasmEngineOptions? Wasm)> Variants { get; } =
    [
        ("defaults", null, null),
        ("wide stages", new Dictionary<string, StageOptions>(StringComparer.Ordinal)
        {
            [StageNames.Admission] = new(Parallelism: 4, Capacity: 1024),
            [StageNames.ImagePull] = new(Parallelism: 16, Capacity: 1024),
            [StageNames.Compile] = new(Parallelism: 2, Capacity: 1024),
            [StageNames.VolumeSetup] = new(Parallelism: 16, Capacity: 1024),
            [StageNames.Run] = new(Parallelism: 32, Capacity: 1024),
            [StageNames.StatusReport] = new(Parallelism: 16, Capacity: 2048),
        }, null),
        ("compact memories", null, new WasmEngineOptions { CompactMemories = true }),
    ];
}
