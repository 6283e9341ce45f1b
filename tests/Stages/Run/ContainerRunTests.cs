using Krustlet.Stages.Compile;
using Krustlet.Stages.Run;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Stages.Tests.Run;

/// <summary>Real modules run through the executor pool; each outcome becomes the container exit a kubelet would report.</summary>
[TestClass]
public sealed class ContainerRunTests
{
    private static readonly WasmEngineHost Host = new(new WasmEngineOptions());
    private static readonly WasmEngineHost FuelHost = new(new WasmEngineOptions { FuelEnabled = true, FuelPerContainer = 100_000 });
    private static readonly WasmEngineHost CompactHost = new(new WasmEngineOptions { CompactMemories = true });
    private static readonly WasmEngineHost CappedHost = new(new WasmEngineOptions { MaxContainerMemory = 64L * 1024 * 1024 });

    private string _root = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void CreateRoot() => _root = Directory.CreateTempSubdirectory("krustlet-run-").FullName;

    [TestCleanup]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private async Task<CompiledArtifact> Compile(string path, WasmEngineHost? host = null) =>
        await new CompileCache(host ?? Host, Path.Combine(_root, "cache")).GetAsync(WasmFixtures.Digest(path), path, TestContext.CancellationToken);

    private ContainerLaunch Launch(CompiledArtifact artifact, string[]? argv = null, (string, string)[]? env = null, Mount[]? mounts = null, long? memory = null) => new(
        "main",
        artifact,
        argv ?? ["main"],
        [.. (env ?? []).Select(e => new KeyValuePair<string, string>(e.Item1, e.Item2))],
        mounts ?? [],
        memory,
        Path.Combine(_root, "logs", "main", "0.log"),
        LogRotationOptions.Default);

    private async Task<(ContainerExit Exit, string[] Log)> Run(ContainerLaunch launch, WasmEngineHost? host = null, ContainerControl? control = null, TimeProvider? time = null)
    {
        using var pool = new ExecutorPool(host ?? Host, 4, time);
        var exit = await pool.RunAsync(launch, control ?? new ContainerControl(time ?? TimeProvider.System), TestContext.CancellationToken);
        Assert.AreEqual(0, pool.Running, "the slot is free once the run is reported");
        return (exit, File.ReadAllLines(launch.LogPath));
    }

    private static string[] Lines(string[] log, string stream) =>
        [.. log.Select(l => l.Split(' ', 4)).Where(p => p[1] == stream).Select(p => p[3])];

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Hello_world_gets_its_args_and_env_and_logs_in_the_CRI_format()
    {
        var artifact = await Compile(WasmFixtures.C("hello"));

        var (exit, log) = await Run(Launch(artifact, argv: ["hello.wasm", "one", "two words"], env: [("GREETING", "hi there")]));

        Assert.AreEqual(ExitKind.Exited, exit.Kind);
        Assert.AreEqual(0, exit.ExitCode);
        Assert.AreEqual("Completed", exit.Reason);
        Assert.IsTrue(exit.FinishedAt >= exit.StartedAt);
        CollectionAssert.AreEqual(
            new[] { "hello from wasm", "argv[0]=hello.wasm", "argv[1]=one", "argv[2]=two words", "GREETING=hi there" },
            Lines(log, "stdout"));
        CollectionAssert.AreEqual(new[] { "a line on stderr" }, Lines(log, "stderr"));
        foreach (var line in log)
        {
            var parts = line.Split(' ', 4);
            Assert.IsTrue(DateTimeOffset.TryParse(parts[0], out _), line);
            Assert.AreEqual(30, parts[0].Length, "RFC 3339 with nanoseconds: " + parts[0]);
            Assert.AreEqual("F", parts[2]);
        }
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_C_program_and_a_component_run_the_same_with_compact_memories()
    {
        var hello = await Compile(WasmFixtures.C("hello"), CompactHost);
        var (exit, log) = await Run(Launch(hello, argv: ["hello.wasm", "one"], env: [("GREETING", "hi")]), CompactHost);

        Assert.AreEqual(0, exit.ExitCode);
        CollectionAssert.AreEqual(new[] { "hello from wasm", "argv[0]=hello.wasm", "argv[1]=one", "GREETING=hi" }, Lines(log, "stdout"));

        var component = await Compile(ComponentFixture.RunReturning(ok: false), CompactHost);
        var (componentExit, _) = await Run(Launch(component) with { LogPath = Path.Combine(_root, "logs", "main", "1.log") }, CompactHost);

        Assert.AreEqual(1, componentExit.ExitCode);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow(0, "Completed")]
    [DataRow(1, "Error")]
    [DataRow(42, "Error")]
    public async Task Proc_exit_gives_the_exit_code(int code, string reason)
    {
        var (exit, _) = await Run(Launch(await Compile(WasmFixtures.Wat(Wat.Exit(code)))));

        Assert.AreEqual(ExitKind.Exited, exit.Kind);
        Assert.AreEqual(code, exit.ExitCode);
        Assert.AreEqual(reason, exit.Reason);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Returning_from_start_is_exit_code_zero()
    {
        var (exit, _) = await Run(Launch(await Compile(WasmFixtures.Wat(Wat.Returns))));

        Assert.AreEqual(0, exit.ExitCode);
        Assert.AreEqual("Completed", exit.Reason);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow("unreachable", "wasm trap: unreachable")]
    [DataRow("stack-overflow", "wasm trap: stack overflow")]
    [DataRow("divide-by-zero", "wasm trap: integer divide by zero")]
    [DataRow("out-of-bounds", "wasm trap: out-of-bounds memory access")]
    [DataRow("null-call", "wasm trap: ")]
    public async Task A_trap_is_an_error_naming_the_trap_and_output_before_it_is_kept(string kind, string message)
    {
        var wat = kind switch
        {
            "unreachable" => Wat.Unreachable,
            "stack-overflow" => Wat.StackOverflow,
            "divide-by-zero" => Wat.DivideByZero,
            "out-of-bounds" => Wat.OutOfBounds,
            _ => Wat.NullCall,
        };

        var (exit, log) = await Run(Launch(await Compile(WasmFixtures.Wat(wat))));

        Assert.AreEqual(ExitKind.Trapped, exit.Kind);
        Assert.AreEqual(ContainerExit.TrapExitCode, exit.ExitCode);
        Assert.AreEqual("Error", exit.Reason);
        StringAssert.StartsWith(exit.Message, message);
        CollectionAssert.AreEqual(new[] { "before the trap" }, Lines(log, "stdout"));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow("stack-overflow", "wasm trap: stack overflow")]
    [DataRow("divide-by-zero", "wasm trap: integer divide by zero")]
    [DataRow("out-of-bounds", "wasm trap: out-of-bounds memory access")]
    public async Task Compact_memories_trap_the_same_way_without_guard_pages(string kind, string message)
    {
        var wat = kind switch
        {
            "stack-overflow" => Wat.StackOverflow,
            "divide-by-zero" => Wat.DivideByZero,
            _ => Wat.OutOfBounds,
        };

        var (exit, log) = await Run(Launch(await Compile(WasmFixtures.Wat(wat), CompactHost)), CompactHost);

        Assert.AreNotEqual(Host.Fingerprint, CompactHost.Fingerprint, "compact memories change the generated code");
        Assert.AreEqual(ExitKind.Trapped, exit.Kind);
        StringAssert.StartsWith(exit.Message, message);
        CollectionAssert.AreEqual(new[] { "before the trap" }, Lines(log, "stdout"));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Running_out_of_fuel_is_a_trap()
    {
        var (exit, _) = await Run(Launch(await Compile(WasmFixtures.Wat(Wat.InfiniteLoop), FuelHost)), FuelHost);

        Assert.AreEqual(ExitKind.Trapped, exit.Kind);
        StringAssert.StartsWith(exit.Message, "wasm trap: out of fuel");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task An_infinite_loop_is_killed_when_the_pod_is_stopped_and_frees_its_slot()
    {
        using var pool = new ExecutorPool(Host, 1);
        var control = new ContainerControl(TimeProvider.System);
        var launch = Launch(await Compile(WasmFixtures.Wat(Wat.InfiniteLoop)));

        var running = pool.RunAsync(launch, control, TestContext.CancellationToken);
        Assert.AreEqual(1, pool.LiveGuests);
        Assert.AreEqual(0, pool.LiveThreads, "a core module holds no thread of its own");
        control.Kill(KillCause.Stopped("the pod is being deleted"));
        var exit = await running;

        Assert.AreEqual(ExitKind.Killed, exit.Kind);
        Assert.AreEqual(ContainerExit.KilledExitCode, exit.ExitCode);
        Assert.AreEqual("killed: the pod is being deleted", exit.Message);
        Assert.AreEqual(0, pool.Running);
        Assert.AreEqual(0, pool.LiveGuests);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task An_infinite_loop_is_killed_at_its_deadline()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-26T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var control = new ContainerControl(time, deadline: time.GetUtcNow().AddSeconds(30));
        var launch = Launch(await Compile(WasmFixtures.Wat(Wat.InfiniteLoop)));
        using var pool = new ExecutorPool(Host, 1, time);

        var running = pool.RunAsync(launch, control, TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(30));
        var exit = await running;

        Assert.AreEqual(ExitKind.Killed, exit.Kind);
        StringAssert.StartsWith(exit.Message, "killed: DeadlineExceeded");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_memory_limit_makes_growth_fail_instead_of_taking_the_node()
    {
        var artifact = await Compile(WasmFixtures.C("memory_bomb"));

        var (exit, log) = await Run(Launch(artifact, memory: 16 * 1024 * 1024));

        Assert.AreEqual(3, exit.ExitCode, string.Join('\n', log));
        var line = Lines(log, "stdout").Single();
        StringAssert.StartsWith(line, "allocation refused after ");
        var mib = int.Parse(line.Split(' ')[3], System.Globalization.CultureInfo.InvariantCulture);
        Assert.IsTrue(mib is > 0 and < 16, line);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_memory_limit_covers_tables_too()
    {
        // 100,000,000 funcref elements are 800 MB as Wasmtime stores them; the limit is 64 MiB.
        var declared = await Compile(WasmFixtures.Wat("(module (table 100000000 funcref) (func (export \"_start\")))"));
        var (refused, _) = await Run(Launch(declared, memory: 64 * 1024 * 1024));
        Assert.AreEqual(ExitKind.OutOfMemory, refused.Kind);
        Assert.AreEqual(ContainerExit.KilledExitCode, refused.ExitCode);
        Assert.AreEqual("OOMKilled", refused.Reason);
        Assert.AreEqual("the module's table of 100000000 elements needs 800000000 bytes, over the container's memory limit of 67108864 bytes", refused.Message);

        // A table that starts small and is filled past the limit at run time: table.grow fails (-1), as memory.grow does.
        var grows = await Compile(WasmFixtures.Wat("""
            (module
              (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
              (memory (export "memory") 1)
              (table $t 1 funcref)
              (func (export "_start")
                (if (i32.eq (table.grow $t (ref.null func) (i32.const 100000000)) (i32.const -1))
                  (then (call $exit (i32.const 3))))
                (call $exit (i32.const 0))))
            """));
        var (grown, _) = await Run(Launch(grows, memory: 64 * 1024 * 1024));
        Assert.AreEqual(3, grown.ExitCode, grown.Message);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_components_memory_figure_is_its_linear_memory_as_grown_and_its_tables()
    {
        foreach (var host in new[] { Host, CompactHost })
        {
            var control = new ContainerControl(TimeProvider.System);
            var artifact = await Compile(ComponentFixture.RunGrowingMemory(pages: 2, growPages: 30, tableElements: 1_000), host);
            Assert.AreEqual(8_000L, artifact.TableBytes);
            var (exit, _) = await Run(Launch(artifact), host, control);

            Assert.AreEqual(0, exit.ExitCode, exit.Message);
            Assert.AreEqual((32L * 65_536) + 8_000, control.Usage.MemoryBytes, "32 pages of linear memory and 1,000 table elements of 8 bytes");
        }

        // The limit still bounds growth with the shim making the memories: memory.grow fails inside the guest.
        var (refused, _) = await Run(Launch(await Compile(ComponentFixture.RunGrowingMemory(pages: 1, growPages: 2_000, tableElements: 0)), memory: 64L * 1024 * 1024));
        Assert.AreEqual(1, refused.ExitCode, "run returned its error: 2,000 more pages are over 64 MiB");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_modules_memory_figure_is_its_memory_at_its_last_host_call_and_its_tables()
    {
        var control = new ContainerControl(TimeProvider.System);
        var artifact = await Compile(WasmFixtures.Wat("""
            (module
              (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
              (memory (export "memory") 3)
              (table 100 funcref)
              (func (export "_start") (drop (memory.grow (i32.const 5))) (drop (call $yield))))
            """));
        Assert.AreEqual(800L, artifact.TableBytes);

        var (exit, _) = await Run(Launch(artifact), control: control);

        Assert.AreEqual(0, exit.ExitCode, exit.Message);
        Assert.AreEqual((8L * 65_536) + 800, control.Usage.MemoryBytes, "8 pages seen at sched_yield, and 100 table elements");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_container_without_a_limit_is_bounded_by_the_node_cap()
    {
        var memory = await Compile(WasmFixtures.Wat("(module (memory 2048) (func (export \"_start\")))"), CappedHost);
        var (capped, _) = await Run(Launch(memory), CappedHost);
        Assert.AreEqual("OOMKilled", capped.Reason, capped.Message);
        Assert.AreEqual("the module's memory of 2048 pages needs 134217728 bytes, over the node's per-container memory cap (Wasm:MaxContainerMemory) of 67108864 bytes", capped.Message);

        var (larger, _) = await Run(Launch(memory, memory: 1024L * 1024 * 1024), CappedHost);
        Assert.AreEqual("OOMKilled", larger.Reason, "a pod's limit above the cap does not lift it");

        var (within, _) = await Run(Launch(await Compile(WasmFixtures.Wat("(module (memory 2048) (func (export \"_start\")))")), memory: 256L * 1024 * 1024));
        Assert.AreEqual(0, within.ExitCode, "within both the pod's limit and the default cap");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Mounts_are_readable_and_a_read_only_mount_refuses_writes()
    {
        var config = Directory.CreateDirectory(Path.Combine(_root, "config")).FullName;
        var data = Directory.CreateDirectory(Path.Combine(_root, "data")).FullName;
        File.WriteAllText(Path.Combine(config, "message"), "from a volume\n");
        var artifact = await Compile(WasmFixtures.C("files"));

        var (readOnly, roLog) = await Run(Launch(artifact, mounts: [new Mount(config, "/config", true), new Mount(data, "/data", true)]));
        Assert.AreEqual(2, readOnly.ExitCode, string.Join('\n', roLog));
        CollectionAssert.Contains(Lines(roLog, "stdout"), "read: from a volume");
        Assert.IsFalse(File.Exists(Path.Combine(data, "out.txt")));

        var (writable, _) = await Run(Launch(artifact, mounts: [new Mount(config, "/config", true), new Mount(data, "/data", false)]) with { LogPath = Path.Combine(_root, "logs", "main", "1.log") });
        Assert.AreEqual(0, writable.ExitCode);
        Assert.AreEqual("written by wasm\n", File.ReadAllText(Path.Combine(data, "out.txt")));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow("no-start", "the module exports no _start function: it is not a WASI command")]
    [DataRow("unknown-import", "unknown import")]
    public async Task A_module_that_cannot_start_says_why(string kind, string message)
    {
        var (exit, _) = await Run(Launch(await Compile(WasmFixtures.Wat(kind == "no-start" ? Wat.NoStart : Wat.UnknownImport))));

        Assert.AreEqual(ExitKind.FailedToStart, exit.Kind);
        Assert.AreEqual("StartError", exit.Reason);
        StringAssert.Contains(exit.Message, message);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow(true, 0, "Completed")]
    [DataRow(false, 1, "Error")]
    public async Task A_component_runs_through_wasi_cli_run(bool ok, int exitCode, string reason)
    {
        var path = ComponentFixture.RunReturning(ok);
        var artifact = await Compile(path);
        Assert.AreEqual(WasmBinaryKind.Component, artifact.Kind);

        var (exit, _) = await Run(Launch(artifact));

        Assert.AreEqual(ExitKind.Exited, exit.Kind);
        Assert.AreEqual(exitCode, exit.ExitCode);
        Assert.AreEqual(reason, exit.Reason);

        // A component's artifact survives a restart too.
        var reloaded = await new CompileCache(Host, Path.Combine(_root, "cache")).GetAsync(WasmFixtures.Digest(path), path, TestContext.CancellationToken);
        Assert.AreEqual(CompileSource.DiskCache, reloaded.Source);
        Assert.AreEqual(exitCode, (await Run(Launch(reloaded) with { LogPath = Path.Combine(_root, "logs", "main", "1.log") })).Exit.ExitCode);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_components_cpu_is_its_threads_cpu_time_and_a_modules_is_its_poll_time()
    {
        var control = new ContainerControl(TimeProvider.System);
        var (exit, _) = await Run(Launch(await Compile(ComponentFixture.RunCounting(20_000_000))), control: control);
        Assert.AreEqual(ExitKind.Exited, exit.Kind);
        Assert.IsGreaterThan(0L, control.Usage.CpuNanoseconds, "the component's thread ran it");

        var module = new ContainerControl(TimeProvider.System);
        var (moduleExit, _) = await Run(Launch(await Compile(WasmFixtures.C("hello"))), control: module);
        Assert.AreEqual(ExitKind.Exited, moduleExit.Kind);
        Assert.IsGreaterThan(0L, module.Usage.CpuNanoseconds, "the executor polled it");
        Assert.IsGreaterThan(0L, module.Usage.MemoryBytes, "its memory as instantiated at least");
    }
}
