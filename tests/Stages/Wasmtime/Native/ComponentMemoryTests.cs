using Krustlet.Stages.Compile;
using Krustlet.Stages.Wasmtime.Native;
using Components = global::Wasmtime.Components;

namespace Krustlet.Stages.Tests.Wasmtime.Native;

/// <summary>The component engine's memories are made by the shim and counted for the run that made them.</summary>
[TestClass]
public sealed class ComponentMemoryTests
{
    private static readonly WasmEngineHost Host = new(new WasmEngineOptions());

    // The engine's epoch advances every 10 ms; a store's default deadline (0) interrupts at once.
    private const ulong NoDeadline = 1_000_000;

    [TestMethod]
    public void A_runs_memories_count_while_they_live_and_grow_and_no_longer_once_their_store_ends()
    {
        using var component = Components.Component.FromBytes(Host.Engine, File.ReadAllBytes(ComponentFixture.RunGrowingMemory(pages: 3, growPages: 7, tableElements: 0)));
        using var usage = new ComponentMemoryUsage();
        usage.Enter();
        try
        {
            using (var store = new global::Wasmtime.Store(Host.Engine))
            {
                store.SetEpochDeadline(NoDeadline);
                using var linker = new Components.ComponentLinker(Host.Engine);
                var instance = linker.Instantiate(store, component);
                Assert.AreEqual(3L * 65_536, usage.Bytes, "the declared pages, made at instantiation");

                var run = instance.GetFunction("wasi:cli/run@0.2.0", "run")!;
                run.Call([]);
                Assert.AreEqual(10L * 65_536, usage.Bytes, "grown by 7 pages");
            }

            Assert.AreEqual(0L, usage.Bytes, "the store's memories ended with it");
        }
        finally
        {
            ComponentMemoryUsage.Leave();
        }

        // Memories made on a thread that entered no usage count nowhere.
        using (var other = new global::Wasmtime.Store(Host.Engine))
        {
            using var linker = new Components.ComponentLinker(Host.Engine);
            linker.Instantiate(other, component);
            Assert.AreEqual(0L, usage.Bytes);
        }
    }

    [TestMethod]
    public void The_count_outlives_the_runs_handle_while_a_memory_holds_it()
    {
        using var component = Components.Component.FromBytes(Host.Engine, File.ReadAllBytes(ComponentFixture.RunGrowingMemory(pages: 1, growPages: 1, tableElements: 0)));
        using var store = new global::Wasmtime.Store(Host.Engine);
        store.SetEpochDeadline(NoDeadline);
        var usage = new ComponentMemoryUsage();
        usage.Enter();
        using var linker = new Components.ComponentLinker(Host.Engine);
        var instance = linker.Instantiate(store, component);
        ComponentMemoryUsage.Leave();
        usage.Dispose(); // the memory keeps the native counter alive

        instance.GetFunction("wasi:cli/run@0.2.0", "run")!.Call([]); // grows it: writes the counter, which must still exist
        Assert.ThrowsExactly<ObjectDisposedException>(() => _ = usage.Bytes);
    }
}
