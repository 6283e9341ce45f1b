using System.Globalization;
using Krustlet.Stages.Compile;
using Krustlet.Stages.Wasmtime.Native;

namespace Krustlet.Stages.Run.Executor;

/// <summary>
/// The executor's half of the Wasmtime runtime: an async engine whose instances, memories, tables and
/// fiber stacks come from a fixed pool, the WASI linker with the shim's parking <c>poll_oneoff</c> and
/// <c>sched_yield</c>, and the <see cref="GuestScheduler"/> whose few threads poll every core-module guest.
/// Core modules are compiled for this engine; components stay on Wasmtime.Dotnet's engine.
/// </summary>
public sealed class ExecutorEngine : IDisposable
{
    private const ulong Page = 65536;
    private const ulong FourGiB = 4UL * 1024 * 1024 * 1024;

    /// <summary>Address space the pool may reserve in all (half of x86-64's 128 TiB user space).</summary>
    private const ulong MaxPoolAddressSpace = 64UL * 1024 * 1024 * 1024 * 1024;

    private ExecutorEngine(NativeEngine engine, NativeLinker linker, GuestScheduler scheduler, ExecutorLayout layout)
    {
        Engine = engine;
        Linker = linker;
        Scheduler = scheduler;
        Layout = layout;
    }

    public NativeEngine Engine { get; }

    /// <summary>WASI preview 1 with parking <c>poll_oneoff</c>/<c>sched_yield</c>; every InstancePre is made against it.</summary>
    public NativeLinker Linker { get; }

    public GuestScheduler Scheduler { get; }

    /// <summary>The pool's sizes, as settings and validation see them.</summary>
    public ExecutorLayout Layout { get; }

    /// <summary>Builds the engine, or throws <see cref="ArgumentException"/> with every problem of <paramref name="options"/> in one message.</summary>
    public static ExecutorEngine Create(WasmEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var layout = ExecutorLayout.For(options);
        if (layout.Problems.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", layout.Problems), nameof(options));
        }

        var engine = new NativeEngine(layout.EngineOptions);
        NativeLinker? linker = null;
        try
        {
            linker = new NativeLinker(engine);
            linker.DefineParkingWasi();
            var scheduler = new GuestScheduler(options.ExecutorThreads);
            return new ExecutorEngine(engine, linker, scheduler, layout);
        }
        catch
        {
            linker?.Dispose();
            engine.Dispose();
            throw;
        }
    }

    /// <summary>Stops the scheduler (guests left are ended), then frees the linker and the engine's pool.</summary>
    public void Dispose()
    {
        Scheduler.Dispose();
        Linker.Dispose();
        Engine.Dispose();
    }

    /// <summary>The pool layout a configuration asks for (<see cref="For"/>), and what is wrong with it.</summary>
    public sealed record ExecutorLayout(NativeEngineOptions EngineOptions, int Slots, ulong AddressSpace, long MemoryMappings, IReadOnlyList<string> Problems)
    {
        /// <param name="options">The engine settings.</param>
        /// <param name="maxMapCount">The kernel's vm.max_map_count; null reads /proc/sys/vm/max_map_count.</param>
        public static ExecutorLayout For(WasmEngineOptions options, long? maxMapCount = null)
        {
            ArgumentNullException.ThrowIfNull(options);
            var problems = new List<string>();
            var slots = options.PoolSlots > 0 ? options.PoolSlots : Run.ExecutorPool.DefaultSlots;
            // A 32-bit memory never exceeds 4 GiB whatever the cap; the pool's slot is the cap in pages.
            var maxMemory = Math.Min((ulong)Math.Max(options.MaxContainerMemory, 0), FourGiB) / Page * Page;
            if (maxMemory == 0)
            {
                problems.Add($"Wasm:MaxContainerMemory ({options.MaxContainerMemory}) must be at least one 64 KiB page.");
                maxMemory = Page;
            }

            // Default: each memory slot reserves 4 GiB + a guard, so 32-bit accesses need no bounds
            // checks; the store's limits (the container's limits.memory and the cap) then decide what a
            // guest may reach, at run time, as without a pool. Compact: a slot
            // reserves only what the cap allows, no guard (bounds checks in code), so many more fit in
            // the address space; a module that declares more than the cap is then refused when compiled
            // ("does not fit in pooling allocator requirements") instead of OOMKilled when started.
            var reservation = options.CompactMemories ? maxMemory : FourGiB;
            var guard = options.CompactMemories ? 0UL : 32UL * 1024 * 1024;
            var slotMemory = options.CompactMemories ? maxMemory : FourGiB;
            // A table slot holds what the cap allows (8 bytes an element): a module whose table is over
            // the node's cap is refused when compiled; one over its pod's own, lower, limit still ends
            // OOMKilled when it starts, as without a pool.
            var tableElements = WasmContainerRunner.TableElementsWithin((long)maxMemory);
            var stack = NativeEngine.DefaultAsyncStackSize;
            var perSlot = reservation + guard + (ulong)tableElements * WasmContainerRunner.TableElementBytes + stack;
            var addressSpace = (ulong)slots * perSlot;
            if (addressSpace > MaxPoolAddressSpace)
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture,
                    $"The executor pool would reserve {addressSpace >> 40} TiB of address space ({slots} slots of {perSlot >> 20} MiB; at most {MaxPoolAddressSpace >> 40} TiB): lower Wasm:PoolSlots or Node:MaxPods, lower Wasm:MaxContainerMemory, or set Wasm:CompactMemories=true."));
            }

            // Memory mappings: each fiber stack is two (stack and guard page) from the start; each memory
            // in use splits its slot into an accessible part and the rest (two), plus its copy-on-write
            // image (two) unless memories are compact.
            var mappings = (long)slots * (2 + (options.CompactMemories ? 2 : 4));
            if ((maxMapCount ?? MaxMapCount()) is { } limit && mappings + ReservedMappings > limit)
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture,
                    $"The executor pool needs up to {mappings} memory mappings for {slots} slots (Wasm:PoolSlots, by default Node:MaxPods), over the kernel's vm.max_map_count ({limit}) less {ReservedMappings} for the rest of the agent: at most {Math.Max(0, (limit - ReservedMappings) / (mappings / slots))} fit{(options.CompactMemories ? string.Empty : "; Wasm:CompactMemories=true fits more")}, or raise vm.max_map_count (sysctl)."));
            }

            if (options.ExecutorThreads < 0)
            {
                problems.Add($"Wasm:ExecutorThreads must be 0 (one per core) or more (got {options.ExecutorThreads}).");
            }

            var engine = new NativeEngineOptions
            {
                EpochInterruption = true,
                ConsumeFuel = options.FuelEnabled,
                MemoryReservation = reservation,
                MemoryGuardSize = guard,
                MemoryReservationForGrowth = 0,
                SignalsBasedTraps = !options.CompactMemories,
                MemoryInitCopyOnWrite = !options.CompactMemories,
                Pooling = new NativePoolingOptions
                {
                    TotalCoreInstances = (uint)slots,
                    TotalMemories = (uint)slots,
                    TotalTables = (uint)slots,
                    TotalStacks = (uint)slots,
                    MaxMemorySize = (nuint)slotMemory,
                    TableElements = tableElements,
                    // A wasi-libc module's first 128 KiB of memory and its table stay warm between runs.
                    LinearMemoryKeepResident = 192 * 1024,
                    TableKeepResident = 16 * 1024,
                },
            };
            problems.AddRange(NativeEngine.Validate(engine));
            return new ExecutorLayout(engine, slots, addressSpace, mappings, problems);
        }

        /// <summary>Mappings left to the runtime, the heap and the loaded libraries.</summary>
        public const long ReservedMappings = 4096;

        private static long? MaxMapCount()
        {
            try
            {
                return long.Parse(File.ReadAllText("/proc/sys/vm/max_map_count").Trim(), CultureInfo.InvariantCulture);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
            {
                return null;
            }
        }
    }
}

/// <summary>
/// One core-module run to its end on the calling thread, without the scheduler, log or limits: a fresh
/// pooled store with WASI, instantiated from the InstancePre, then <c>_start</c>, each future polled until
/// done (a sleeping guest spins through its parks here). The in-process floor benchmarks compare the
/// executor with, and a way for tests to run a compiled artifact directly.
/// </summary>
public static class BareRun
{
    /// <summary>Runs <c>_start</c>; returns the WASI exit code (0 when it returned).</summary>
    public static int Run(ExecutorEngine engine, NativeInstancePre instancePre, NativeWasiOptions wasi)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(instancePre);
        ArgumentNullException.ThrowIfNull(wasi);
        using var store = new NativeStore(engine.Engine);
        store.SetEpochDeadline(ulong.MaxValue);
        store.SetWasi(wasi);
        NativeInstance instance;
        using (var instantiate = instancePre.InstantiateAsync(store))
        {
            PollToEnd(instantiate, store);
            instance = instantiate.Instance;
        }

        var start = instance.GetFunction("_start") ?? throw new InvalidOperationException("the module exports no _start function");
        try
        {
            using var call = store.CallAsync(start, [], 0);
            PollToEnd(call, store);
            return 0;
        }
        catch (GuestExitException exit)
        {
            return exit.ExitCode;
        }
    }

    private static void PollToEnd(GuestFuture future, NativeStore store)
    {
        while (!future.Poll())
        {
            store.Mailbox.Wake(); // a sleep or a yield: continue at once
        }
    }
}
