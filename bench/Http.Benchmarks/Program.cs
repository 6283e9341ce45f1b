using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

// Linux only: /proc, taskset, ab, clang.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Krustlet.Http.Benchmarks;

/// <summary>
/// The HTTP handler pods benchmark (issue #15): a "hello" handler run by the agent (a fresh wasm instance per
/// request), a plain Kestrel endpoint returning the same bytes (the HTTP stack's ceiling) and
/// process-per-request CGI of the same C program compiled natively, measured side by side in one run with
/// the same load generators, in interleaved rounds; then the agent's RSS with idle handler pods. Prints a
/// markdown table and JSON lines on stdout, progress on stderr. See <see cref="Options.Usage"/>.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        try
        {
            if (args.Length > 0 && args[0].StartsWith("serve-", StringComparison.Ordinal))
            {
                return await Servers.RunAsync(args[0], int.Parse(args[1], CultureInfo.InvariantCulture), args.Length > 2 ? args[2] : null);
            }

            // The in-repo load generator runs in this process on one CPU: socket continuations run on the
            // epoll thread instead of hopping to the thread pool (read when sockets are first used). The
            // children do not inherit it (Child.Start), so the targets run with .NET's defaults.
            Environment.SetEnvironmentVariable(Child.InlineCompletions, "1");
            var options = Options.Parse(args);
            return await new Run(options, args).ExecuteAsync();
        }
        catch (BenchException e)
        {
            await Console.Error.WriteLineAsync("error: " + e.Message);
            return 1;
        }
    }
}

/// <summary>One measured target: a process the harness started and the loopback port it serves.</summary>
internal sealed record Target(string Name, string Description, Child Process, int Port, Func<string>? Diagnose = null);

/// <summary>One round's measurement of one target by one generator.</summary>
/// <remarks><see cref="GeneratorCores"/> is this process's CPU (the in-repo generator); not known for ab.</remarks>
internal sealed record Measurement(int Round, string Target, LoadResult Load, double TargetCores, double? GeneratorCores, long? KeepAliveRequests);

/// <summary>The agent's resident memory, idle and with the idle handler pods.</summary>
internal sealed record RssResult(int Pods, long IdleKiB, int IdleThreads, long WithPodsKiB, int WithPodsThreads, double PodsReadySeconds);

internal sealed class Run(Options options, IReadOnlyList<string> args)
{
    private readonly List<Measurement> _measurements = [];
    private readonly string _repository = Options.RepositoryRoot();

    public async Task<int> ExecuteAsync()
    {
        var machine = Machine.Describe(options);
        var command = "dotnet run -c Release --project bench/Http.Benchmarks --" + string.Concat(args.Select(a => " " + a));
        var work = Directory.CreateTempSubdirectory("krustlet-httpbench-").FullName;
        Progress($"work directory {work}");
        if (!options.Keep)
        {
            Child.RemoveOnSignal(work);
        }

        var started = DateTimeOffset.UtcNow;
        var agentDll = options.Agent ?? Path.Combine(_repository, "src", "Host", "bin", "Release", "net10.0", "krustlet.dll");
        if (!options.SkipAgent && !File.Exists(agentDll))
        {
            throw new BenchException($"the agent {agentDll} is not built: nice -n 10 dotnet build -c Release src/Host (or --agent PATH, or --skip-agent)");
        }

        if (options.LoadCpus is not null)
        {
            // The in-repo generator runs in this process: pin it where ab runs.
            Process.GetCurrentProcess().ProcessorAffinity = CpuMask(options.LoadCpus);
        }

        RssResult? rss = null;
        try
        {
            var (wasm, native) = Handler.Build(work);
            var layout = Path.Combine(work, "layout");
            Handler.WriteLayout(wasm, layout, AgentTarget.Image);
            Progress($"built {wasm} ({new FileInfo(wasm).Length:N0} bytes) and {native}; layout {layout} names {AgentTarget.Image}");
            if (options.Load)
            {
                await LoadRoundsAsync(agentDll, work, layout, native);
            }

            if (!options.SkipAgent && options.Rss && options.IdlePods > 0)
            {
                rss = await MeasureRssAsync(agentDll, layout, Path.Combine(work, "rss"));
            }
        }
        finally
        {
            if (options.Keep)
            {
                Progress($"kept {work}");
            }
            else
            {
                Directory.Delete(work, recursive: true);
            }
        }

        machine["loadavgEnd"] = File.ReadAllText("/proc/loadavg").Trim();
        var lines = Report.JsonLines(machine, command, started, options, _measurements, rss);
        Console.WriteLine(Report.Markdown(machine, command, started, options, _measurements, rss));
        Console.WriteLine();
        foreach (var line in lines)
        {
            Console.WriteLine(line);
        }

        if (options.Json is { } json)
        {
            await File.WriteAllLinesAsync(json, lines);
        }

        return 0;
    }

    /// <summary>Starts the targets, checks each answers the hello bytes, warms them, then runs the interleaved rounds.</summary>
    private async Task LoadRoundsAsync(string agentDll, string work, string layout, string native)
    {
        var targets = new List<Target>();
        try
        {
            await LoadRoundsAsync(targets, agentDll, work, layout, native);
        }
        finally
        {
            foreach (var target in targets)
            {
                if (target.Name == "agent")
                {
                    await target.Process.StopAsync(TimeSpan.FromSeconds(15));
                }

                target.Process.Dispose();
            }
        }
    }

    private async Task LoadRoundsAsync(List<Target> targets, string agentDll, string work, string layout, string native)
    {
        if (!options.SkipAgent)
        {
            var port = Ports.Free();
            var root = Path.Combine(work, "agent");
            var agent = AgentTarget.Start("agent", agentDll, root, layout, maxPods: 110, options.TargetCpus);
            targets.Add(new Target("agent", "the agent: a fresh wasm instance per request", agent, port, () => AgentTarget.PodStates(root)));
            AgentTarget.WritePods(Path.Combine(root, "manifests"), [("hello-http", port)]);
        }

        var kestrelPort = Ports.Free();
        targets.Add(new Target("kestrel", "plain Kestrel, the same bytes from memory (ceiling)", StartServer("kestrel", "serve-kestrel", kestrelPort), kestrelPort));
        var cgiPort = Ports.Free();
        targets.Add(new Target("cgi", "process-per-request CGI of the native build", StartServer("cgi", "serve-cgi", cgiPort, native), cgiPort));

        foreach (var target in targets)
        {
            var ready = Stopwatch.StartNew();
            await Probe.WaitForHelloAsync(target.Process, target.Port, options.ReadyTimeout, $"the {target.Name} target", target.Diagnose);
            Progress($"{target.Name} answers on 127.0.0.1:{target.Port} (pid {target.Process.Pid}, after {ready.Elapsed.TotalSeconds:0.0} s)");
        }

        foreach (var target in targets)
        {
            Progress($"warming {target.Name} (2 s of load, not recorded)");
            await SocketLoad.RunAsync(target.Port, options.Concurrency, TimeSpan.Zero, TimeSpan.FromSeconds(2));
        }

        for (var round = 1; round <= options.Rounds; round++)
        {
            foreach (var target in targets)
            {
                if (options.Socket)
                {
                    await MeasureAsync(round, target, ab: false);
                }

                if (options.Ab)
                {
                    await MeasureAsync(round, target, ab: true);
                }
            }
        }

        foreach (var target in targets)
        {
            if (target.Process.HasExited)
            {
                throw new BenchException($"the {target.Name} target exited during the run ({target.Process.ExitCode}). Its output:\n{target.Process.Tail()}");
            }
        }
    }

    private async Task MeasureAsync(int round, Target target, bool ab)
    {
        var cpuBefore = target.Process.CpuSeconds();
        var ownBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        LoadResult load;
        long? keepAlive = null;
        if (ab)
        {
            (load, var count) = await AbLoad.RunAsync(target.Port, options.Concurrency, options.Requests, options.Duration, options.LoadCpus);
            keepAlive = count;
        }
        else
        {
            load = await SocketLoad.RunAsync(target.Port, options.Concurrency, options.Warmup, options.Duration);
        }

        var cores = (target.Process.CpuSeconds() - cpuBefore) / clock.Elapsed.TotalSeconds;
        double? generatorCores = ab ? null : (Process.GetCurrentProcess().TotalProcessorTime - ownBefore).TotalSeconds / clock.Elapsed.TotalSeconds;
        var measurement = new Measurement(round, target.Name, load, cores, generatorCores, keepAlive);
        _measurements.Add(measurement);
        Progress(string.Create(CultureInfo.InvariantCulture,
            $"round {round} {target.Name,-7} {load.Generator,-6} {load.RequestsPerSecond,10:N0} req/s  p50 {load.P50Ms:0.000} ms  p99 {load.P99Ms:0.000} ms  errors {load.Errors}  connections {load.Connections}{(keepAlive is { } k ? $"  keep-alive {k:N0}/{load.Requests:N0}" : "")}  target {cores:0.00} cores{(generatorCores is { } g ? $"  generator {g:0.00} cores" : "")}{(load.FirstError is { } e ? "  first error: " + e : "")}"));
        if (load.Requests == 0)
        {
            throw new BenchException($"the {target.Name} target served no valid request in round {round} ({load.FirstError ?? "no error seen"}). Its output:\n{target.Process.Tail()}");
        }
    }

    /// <summary>
    /// Starts an idle agent (no pods), samples VmRSS after it settles, writes the idle handler pods (each on
    /// a port of its own), waits until every port answers, lets it settle again and samples once more.
    /// </summary>
    private async Task<RssResult> MeasureRssAsync(string agentDll, string layout, string root)
    {
        using var agent = AgentTarget.Start("rss agent", agentDll, root, layout, maxPods: Math.Max(110, options.IdlePods + 10), options.TargetCpus);
        try
        {
            await AgentTarget.WaitRunningAsync(agent, options.ReadyTimeout);
            Progress($"rss: idle agent running (pid {agent.Pid}); settling {options.Settle.TotalSeconds:0} s");
            await Task.Delay(options.Settle);
            var idle = agent.Memory();
            Progress($"rss: idle agent {idle.RssKiB / 1024.0:0.0} MiB, {idle.Threads} threads; writing {options.IdlePods} handler pods");

            var ports = Ports.Free(options.IdlePods);
            var clock = Stopwatch.StartNew();
            AgentTarget.WritePods(Path.Combine(root, "manifests"), ports.Select((port, i) => (string.Create(CultureInfo.InvariantCulture, $"idle-{i:000}"), port)));
            var timeout = options.ReadyTimeout + TimeSpan.FromSeconds(options.IdlePods * 0.5);
            foreach (var port in ports)
            {
                await Probe.WaitForHelloAsync(agent, port, timeout - clock.Elapsed, $"idle handler pod on {port}", () => AgentTarget.PodStates(root));
            }

            var ready = clock.Elapsed.TotalSeconds;
            Progress($"rss: all {options.IdlePods} handler pods answer after {ready:0.0} s; settling {options.Settle.TotalSeconds:0} s");
            await Task.Delay(options.Settle);
            var withPods = agent.Memory();
            Progress($"rss: with {options.IdlePods} idle handler pods {withPods.RssKiB / 1024.0:0.0} MiB, {withPods.Threads} threads");
            return new RssResult(options.IdlePods, idle.RssKiB, idle.Threads, withPods.RssKiB, withPods.Threads, ready);
        }
        finally
        {
            await agent.StopAsync(TimeSpan.FromSeconds(30));
        }
    }

    /// <summary>A child server of this program (<c>serve-kestrel</c>, <c>serve-cgi</c>) on the target CPUs.</summary>
    private Child StartServer(string label, string mode, int port, string? binary = null)
    {
        var self = Environment.ProcessPath ?? throw new BenchException("cannot find this program's path to start its servers");
        var arguments = new List<string>();
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            arguments.Add(typeof(Program).Assembly.Location);
        }

        arguments.Add(mode);
        arguments.Add(port.ToString(CultureInfo.InvariantCulture));
        if (binary is not null)
        {
            arguments.Add(binary);
        }

        return Child.Start(label, self, arguments, options.TargetCpus);
    }

    private static nint CpuMask(string list)
    {
        long mask = 0;
        foreach (var part in list.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var range = part.Split('-');
            var first = int.Parse(range[0], CultureInfo.InvariantCulture);
            var last = range.Length > 1 ? int.Parse(range[1], CultureInfo.InvariantCulture) : first;
            for (var cpu = first; cpu <= last; cpu++)
            {
                mask |= 1L << cpu;
            }
        }

        return (nint)mask;
    }

    private static void Progress(string message) => Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {message}");
}

/// <summary>What the run ran on.</summary>
internal static class Machine
{
    public static JsonObject Describe(Options options)
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
            ["clang"] = Tool.Version("clang", "--version"),
            ["ab"] = Tool.Version("ab", "-V"),
            ["targetCpus"] = options.TargetCpus ?? "all",
            ["loadCpus"] = options.LoadCpus ?? "all",
            ["loadavgStart"] = File.ReadAllText("/proc/loadavg").Trim(),
        };
    }
}
