using Krustlet.Stages.Run.Executor;
using Krustlet.Stages.Wasmtime.Native;
using BenchmarkDotNet.Attributes;
using Krustlet.Stages.Compile;
using Krustlet.Stages.Run;
using Wasmtime;

namespace Krustlet.Run.Benchmarks;

/// <summary>
/// Instantiate-and-run of a trivial WASI command: through the executor pool (a dedicated thread, a
/// store with limits and the epoch callback, WASI with log callbacks, a CRI log file) against the floor,
/// a bare Wasmtime loop in the same process (store, WASI, instantiate, _start).
/// </summary>
[MemoryDiagnoser]
public class RunFloorBenchmarks
{
    private WasmEngineHost _host = null!;
    private string _root = null!;
    private CompiledArtifact _artifact = null!;
    private Linker _linker = null!;
    private ExecutorPool _pool = null!;
    private int _run;

    [GlobalSetup]
    public void Setup()
    {
        _host = new WasmEngineHost(new WasmEngineOptions());
        _root = Directory.CreateTempSubdirectory("krustlet-bench-run-").FullName;
        var module = Modules.FromWat(_root, Modules.Trivial);
        _artifact = new CompileCache(_host, Path.Combine(_root, "cache")).GetAsync(Modules.Digest(module), module, CancellationToken.None).GetAwaiter().GetResult();
        _linker = new Linker(_host.Engine);
        _linker.DefineWasi();
        _pool = new ExecutorPool(_host, 4);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        _linker.Dispose();
        _host.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    /// <summary>The floor: what Wasmtime itself costs for one run.</summary>
    [Benchmark(Baseline = true)]
    public void BareWasmtime()
    {
        BareRun.Run(_host.Native, _artifact.InstancePre!, new NativeWasiOptions { Args = ["trivial"] });
    }

    /// <summary>One container run through the agent's executor pool.</summary>
    [Benchmark]
    public Task<ContainerExit> ThroughExecutorPool()
    {
        var launch = new ContainerLaunch("trivial", _artifact, ["trivial"], [], [], null, Path.Combine(_root, "logs", $"{_run++ % 64}.log"), LogRotationOptions.Default);
        return _pool.RunAsync(launch, new ContainerControl(TimeProvider.System));
    }
}
