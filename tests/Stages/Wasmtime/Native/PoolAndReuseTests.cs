using Krustlet.Stages.Wasmtime.Native;

namespace Krustlet.Stages.Tests.Wasmtime.Native;

/// <summary>One InstancePre serves many stores; the pooling allocator supplies instances and refuses past its size.</summary>
[TestClass]
public sealed class PoolAndReuseTests
{
    private const string Counter = """
        (module
          (memory (export "memory") 1)
          (global $count (mut i32) (i32.const 0))
          (func (export "run") (param $n i32) (result i32)
            (global.set $count (i32.add (global.get $count) (local.get $n)))
            (global.get $count)))
        """;

    public TestContext TestContext { get; set; } = null!;

    private static NativeStore Store(NativeEngine engine)
    {
        var store = new NativeStore(engine);
        store.SetEpochDeadline(1_000_000);
        return store;
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task One_InstancePre_instantiates_into_many_stores_on_several_threads_each_with_its_own_state()
    {
        using var engine = new NativeEngine(new NativeEngineOptions());
        using var module = NativeModule.Compile(engine, NativeGuests.Wat(Counter));
        using var linker = new NativeLinker(engine);
        using var pre = linker.Prepare(module);

        var results = await Task.WhenAll(Enumerable.Range(1, 4).Select(worker => Task.Run(() =>
        {
            var seen = new List<long>();
            for (var i = 0; i < 50; i++)
            {
                using var store = Store(engine);
                var instance = NativeGuests.Instantiate(pre, store);
                NativeGuests.Run(store, instance, "run", worker);
                seen.Add(NativeGuests.Run(store, instance, "run", worker)[0]);
            }
            return (worker, seen);
        }, TestContext.CancellationToken)));

        foreach (var (worker, seen) in results)
        {
            Assert.IsTrue(seen.All(v => v == 2 * worker), $"worker {worker}: every store starts from the module's initial state");
        }
    }

    [TestMethod]
    public void The_pooling_allocator_hands_out_its_instance_slots_refuses_the_next_and_reuses_a_freed_one()
    {
        using var engine = new NativeEngine(new NativeEngineOptions
        {
            Pooling = new NativePoolingOptions
            {
                TotalCoreInstances = 4,
                TotalMemories = 4,
                TotalTables = 4,
                TotalStacks = 4,
                MaxMemorySize = 1 << 20,
            },
        });
        using var module = NativeModule.Compile(engine, NativeGuests.Wat(Counter));
        using var linker = new NativeLinker(engine);
        using var pre = linker.Prepare(module);

        var stores = Enumerable.Range(0, 4).Select(_ => Store(engine)).ToList();
        try
        {
            foreach (var store in stores)
            {
                Assert.AreEqual(7L, NativeGuests.Run(store, NativeGuests.Instantiate(pre, store), "run", 7)[0]);
            }

            using (var fifth = Store(engine))
            {
                var full = Assert.ThrowsExactly<WasmtimeNativeException>(() => NativeGuests.Instantiate(pre, fifth));
                StringAssert.Contains(full.Message, "limit of 4", StringComparison.Ordinal, "the pool is full: " + full.Message);
            }

            stores[0].Dispose(); // deleting a store returns its slot to the pool
            using var again = Store(engine);
            Assert.AreEqual(5L, NativeGuests.Run(again, NativeGuests.Instantiate(pre, again), "run", 5)[0]);
        }
        finally
        {
            foreach (var store in stores.Skip(1))
            {
                store.Dispose();
            }
        }
    }

    [TestMethod]
    public void A_module_whose_memory_exceeds_the_pools_memory_size_is_refused_when_compiled()
    {
        using var engine = new NativeEngine(new NativeEngineOptions { Pooling = new NativePoolingOptions { TotalCoreInstances = 2, TotalMemories = 2, TotalStacks = 2, MaxMemorySize = 1 << 20 } });
        var wasm = NativeGuests.Wat("""(module (memory (export "memory") 32))""");

        var error = Assert.ThrowsExactly<WasmtimeNativeException>(() => NativeModule.Compile(engine, wasm));

        StringAssert.Contains(error.Message, "module memory does not fit in pooling allocator requirements", StringComparison.Ordinal, error.Message);
    }

    [TestMethod]
    public void A_store_memory_limit_makes_memory_grow_fail_without_a_trap()
    {
        using var engine = new NativeEngine(new NativeEngineOptions());
        using var module = NativeModule.Compile(engine, NativeGuests.Wat("""
            (module
              (memory 1)
              (func (export "grow") (param $pages i32) (result i32) (memory.grow (local.get $pages))))
            """));
        using var linker = new NativeLinker(engine);
        using var pre = linker.Prepare(module);
        using var store = Store(engine);
        store.SetLimits(new NativeStoreLimits { MemorySize = 4 * 65536 });
        var instance = NativeGuests.Instantiate(pre, store);

        Assert.AreEqual(1L, NativeGuests.Run(store, instance, "grow", 3)[0], "to 4 pages: allowed, returns the old size");
        Assert.AreEqual(-1L, NativeGuests.Run(store, instance, "grow", 1)[0], "past the limit: memory.grow returns -1");
    }
}
