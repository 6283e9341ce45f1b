using BenchmarkDotNet.Attributes;
using Krustlet.Stages.Wasmtime.Native;

namespace Krustlet.Run.Benchmarks;

/// <summary>
/// The native layer's costs an M:N executor pays per guest: a poll that resumes a yielded guest and yields
/// again (one epoch time slice), and a fresh store instantiated through a cached InstancePre and run to its
/// end, with the pooling allocator and without. No .NET host function runs (they must not run on a fiber,
/// see docs/architecture.md).
/// </summary>
[MemoryDiagnoser]
public class NativeFutureBenchmarks
{
    private const string Spinner = """
        (module
          (func (export "_start") (loop $forever (br $forever)))
          (func (export "run") (param i32) (result i32) (local.get 0)))
        """;

    private string _root = null!;
    private NativeEngine _engine = null!;
    private NativeEngine _pooled = null!;
    private NativeInstancePre _pre = null!;
    private NativeInstancePre _pooledPre = null!;
    private NativeStore _spinStore = null!;
    private GuestFuture _spinning = null!;

    [GlobalSetup]
    public void Setup()
    {
        _root = Directory.CreateTempSubdirectory("krustlet-bench-native-").FullName;
        var wasm = File.ReadAllBytes(Modules.FromWat(_root, Spinner));
        _engine = new NativeEngine(new NativeEngineOptions());
        _pooled = new NativeEngine(new NativeEngineOptions
        {
            Pooling = new NativePoolingOptions { TotalCoreInstances = 64, TotalMemories = 64, TotalTables = 64, TotalStacks = 64, MaxMemorySize = 1 << 20 },
        });
        _pre = Prepare(_engine, wasm);
        _pooledPre = Prepare(_pooled, wasm);

        // A guest that yields at every poll: the deadline is always already passed when it resumes.
        _spinStore = new NativeStore(_engine);
        _spinStore.SetEpochDeadline(1);
        _spinStore.YieldAtEpochDeadline(0);
        var instance = Instantiate(_pre, _spinStore);
        _spinning = _spinStore.CallAsync(instance.GetFunction("_start")!, [], 0);
        _engine.IncrementEpoch();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _spinning.Dispose();
        _spinStore.Dispose();
        _pre.Dispose();
        _pooledPre.Dispose();
        _engine.Dispose();
        _pooled.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    [Benchmark(Description = "poll: resume a yielded guest until its next epoch yield")]
    public bool PollOneSlice() => _spinning.Poll();

    [Benchmark(Description = "new store + InstancePre instantiate + call, on-demand allocator")]
    public long InstantiateAndCall() => StartAndCall(_engine, _pre);

    [Benchmark(Description = "new store + InstancePre instantiate + call, pooling allocator")]
    public long InstantiateAndCallPooled() => StartAndCall(_pooled, _pooledPre);

    private static long StartAndCall(NativeEngine engine, NativeInstancePre pre)
    {
        using var store = new NativeStore(engine);
        store.SetEpochDeadline(1_000_000);
        var instance = Instantiate(pre, store);
        using var call = store.CallAsync(instance.GetFunction("run")!, [7], 1);
        call.Poll();
        return call.Results[0];
    }

    private static NativeInstancePre Prepare(NativeEngine engine, byte[] wasm)
    {
        using var module = NativeModule.Compile(engine, wasm);
        using var linker = new NativeLinker(engine);
        return linker.Prepare(module);
    }

    private static NativeInstance Instantiate(NativeInstancePre pre, NativeStore store)
    {
        using var future = pre.InstantiateAsync(store);
        future.Poll();
        return future.Instance;
    }
}
