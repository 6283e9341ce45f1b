using System.Diagnostics;
using System.Text.Json.Nodes;
using Wasmtime;

namespace Krustlet.EndToEnd.Benchmarks;

/// <summary>
/// What one live instance of the sleeper costs in address-space mappings (vm.max_map_count), virtual size
/// and instantiation time under different Wasmtime engine settings, and what one container thread costs:
/// the numbers behind the density limit. Instances are kept alive in their stores without running.
/// </summary>
internal static class EngineProbe
{
    private const int Instances = 500;

    public static JsonObject Run(string sleeper)
    {
        var configs = new (string Name, Func<Config> Make)[]
        {
            ("default (the agent's: on-demand allocator, copy-on-write memory image)", () => Base()),
            ("copy-on-write memory image off", () => Base().WithMemoryInitCopyOnWrite(false)),
            ("pooling allocator (12,000 memories of at most 64 MiB)", () => Base().WithPoolingAllocationStrategy(Pooling())),
            ("pooling allocator, copy-on-write off", () => Base().WithMemoryInitCopyOnWrite(false).WithPoolingAllocationStrategy(Pooling())),
            ("signals-based traps off, copy-on-write off", () => Base().WithMemoryInitCopyOnWrite(false).WithSignalsBasedTraps(false)),
            ("signals-based traps off, copy-on-write off, no reservation or guard", () => Base().WithMemoryInitCopyOnWrite(false).WithSignalsBasedTraps(false).WithStaticMemoryMaximumSize(0).WithMemoryGuardSize(0)),
        };
        var result = new JsonObject();
        foreach (var (name, make) in configs)
        {
            result[name] = Measure(make, sleeper);
        }

        result["a container thread (4 MiB stack) that has entered wasm once"] = MeasureThreads(Base, sleeper);
        result["a container thread, signals-based traps off"] = MeasureThreads(() => Base().WithSignalsBasedTraps(false), sleeper);
        return result;
    }

    private static Config Base() => new Config().WithEpochInterruption(true).WithOptimizationLevel(OptimizationLevel.Speed);

    private static PoolingAllocationConfig Pooling() => new PoolingAllocationConfig()
        .WithMaxMemories(12_000)
        .WithMaxTables(12_000)
        .WithMaxCoreInstances(12_000)
        .WithMaxMemorySize(64 * 1024 * 1024);

    private static JsonObject Measure(Func<Config> make, string sleeper)
    {
        try
        {
            using var config = make();
            using var engine = new Engine(config);
            using var module = Module.FromFile(engine, sleeper);
            using var linker = new Linker(engine);
            linker.DefineWasi();
            var stores = new List<Store>();
            var times = new List<double>();
            var before = ProcessSample.Take();
            for (var i = 0; i < Instances; i++)
            {
                var start = Stopwatch.GetTimestamp();
                var store = new Store(engine);
                store.SetEpochDeadline(ulong.MaxValue);
                store.SetWasiConfiguration(new WasiConfiguration().WithArgs("sleeper", "0"));
                linker.Instantiate(store, module);
                times.Add(Json.Ms(start, Stopwatch.GetTimestamp()));
                stores.Add(store);
            }

            var after = ProcessSample.Take();
            foreach (var store in stores)
            {
                store.Dispose();
            }

            return new JsonObject
            {
                ["mapsPerInstance"] = Json.Round((after.Maps - before.Maps) / (double)Instances),
                ["vmSizePerInstanceMiB"] = Json.Round((after.VmSizeKiB - before.VmSizeKiB) / 1024.0 / Instances),
                ["rssPerInstanceKiB"] = Json.Round((after.RssKiB - before.RssKiB) / (double)Instances),
                ["instantiate"] = Json.Of(Stats.Of(times)),
            };
        }
        catch (WasmtimeException ex)
        {
            return new JsonObject { ["error"] = ex.Message.Split('\n')[0] };
        }
    }

    private static JsonObject MeasureThreads(Func<Config> make, string sleeper)
    {
        using var config = make();
        using var engine = new Engine(config);
        using var module = Module.FromFile(engine, sleeper);
        using var linker = new Linker(engine);
        linker.DefineWasi();
        using var release = new ManualResetEventSlim();
        using var ready = new CountdownEvent(Instances);
        var before = ProcessSample.Take();
        var threads = new List<Thread>();
        for (var i = 0; i < Instances; i++)
        {
            var thread = new Thread(
                () =>
                {
                    using (var store = new Store(engine))
                    {
                        store.SetEpochDeadline(ulong.MaxValue);
                        store.SetWasiConfiguration(new WasiConfiguration().WithArgs("sleeper", "0"));
                        try
                        {
                            linker.Instantiate(store, module).GetAction("_start")!();
                        }
                        catch (WasmtimeException ex) when (ex.ExitCode == 0)
                        {
                        }
                    }

                    ready.Signal();
                    release.Wait();
                },
                4 * 1024 * 1024)
            { IsBackground = true };
            thread.Start();
            threads.Add(thread);
        }

        ready.Wait();
        var after = ProcessSample.Take();
        release.Set();
        foreach (var thread in threads)
        {
            thread.Join();
        }

        return new JsonObject
        {
            ["mapsPerThread"] = Json.Round((after.Maps - before.Maps) / (double)Instances),
            ["vmSizePerThreadMiB"] = Json.Round((after.VmSizeKiB - before.VmSizeKiB) / 1024.0 / Instances),
            ["rssPerThreadKiB"] = Json.Round((after.RssKiB - before.RssKiB) / (double)Instances),
        };
    }
}
