namespace Krustlet.Stages.Wasmtime.Native;

/// <summary>How an engine is built. A guest call is always a future here, so every engine is async-capable.</summary>
public sealed record NativeEngineOptions
{
    /// <summary>Guests check the engine epoch at loop heads and function entries; needed for time slices and kills.</summary>
    public bool EpochInterruption { get; init; } = true;

    /// <summary>Meter instructions with fuel (a store then starts with none: set it with <see cref="NativeStore.SetFuel"/>).</summary>
    public bool ConsumeFuel { get; init; }

    /// <summary>Size of each guest's separate execution stack (Wasmtime default 2 MiB); must exceed <see cref="MaxWasmStack"/>.</summary>
    public nuint? AsyncStackSize { get; init; }

    /// <summary>The most wasm stack a guest may use (Wasmtime default 512 KiB); host functions get the rest of the async stack.</summary>
    public nuint? MaxWasmStack { get; init; }

    /// <summary>Virtual address space reserved for each linear memory (Wasmtime default 4 GiB); a memory larger than this may move when it grows.</summary>
    public ulong? MemoryReservation { get; init; }

    /// <summary>Guard region after each linear memory (Wasmtime default 32 MiB).</summary>
    public ulong? MemoryGuardSize { get; init; }

    /// <summary>Extra reservation for growth when a memory is placed (Wasmtime default 2 GiB); 0 keeps each memory within its reservation.</summary>
    public ulong? MemoryReservationForGrowth { get; init; }

    /// <summary>False: bounds checks in code instead of signal handlers and guard pages.</summary>
    public bool? SignalsBasedTraps { get; init; }

    /// <summary>False: initialise each memory by copying its data instead of mapping a copy-on-write image (one mapping fewer per instance).</summary>
    public bool? MemoryInitCopyOnWrite { get; init; }

    /// <summary>Instances, memories, tables and async stacks from a fixed pool instead of per-instance mappings.</summary>
    public NativePoolingOptions? Pooling { get; init; }
}

/// <summary>The pooling allocator's fixed sizes (wasmtime_pooling_allocation_config_*). Null keeps Wasmtime's default.</summary>
public sealed record NativePoolingOptions
{
    public uint? TotalCoreInstances { get; init; }
    public uint? TotalMemories { get; init; }
    public uint? TotalTables { get; init; }
    public uint? TotalStacks { get; init; }
    public nuint? MaxMemorySize { get; init; }
    public nuint? TableElements { get; init; }
    public nuint? MaxCoreInstanceSize { get; init; }
    public uint? MaxUnusedWarmSlots { get; init; }

    /// <summary>
    /// Bytes of a freed slot's linear memory (and table) kept resident and zeroed with memset instead of
    /// given back with madvise: a short-lived instance (an HTTP request) then reuses warm pages, with no
    /// page faults or TLB flushes. Only warm, unused slots hold it.
    /// </summary>
    public nuint? LinearMemoryKeepResident { get; init; }

    /// <inheritdoc cref="LinearMemoryKeepResident"/>
    public nuint? TableKeepResident { get; init; }
}

/// <summary>A Wasmtime engine (wasm_engine_t): compiled code and the epoch counter shared by its stores. Thread-safe.</summary>
public sealed class NativeEngine : IDisposable
{
    internal EngineHandle Handle { get; }

    public NativeEngine(NativeEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (Validate(options) is { Count: > 0 } problems)
        {
            throw new ArgumentException(string.Join(" ", problems), nameof(options));
        }
        using var config = new ConfigHandle(NativeMethods.wasm_config_new());
        if (config.IsInvalid)
        {
            throw new WasmtimeNativeException("wasm_config_new returned null");
        }
        var c = config.DangerousGetHandle();
        NativeMethods.wasmtime_config_epoch_interruption_set(c, options.EpochInterruption);
        NativeMethods.wasmtime_config_consume_fuel_set(c, options.ConsumeFuel);
        if (options.MaxWasmStack is { } maxStack)
        {
            NativeMethods.wasmtime_config_max_wasm_stack_set(c, maxStack);
        }
        if (options.AsyncStackSize is { } asyncStack)
        {
            NativeMethods.wasmtime_config_async_stack_size_set(c, asyncStack);
        }
        if (options.MemoryReservation is { } reservation)
        {
            NativeMethods.wasmtime_config_memory_reservation_set(c, reservation);
        }
        if (options.MemoryGuardSize is { } guard)
        {
            NativeMethods.wasmtime_config_memory_guard_size_set(c, guard);
        }
        if (options.MemoryReservationForGrowth is { } growth)
        {
            NativeMethods.wasmtime_config_memory_reservation_for_growth_set(c, growth);
        }
        if (options.SignalsBasedTraps is { } signals)
        {
            NativeMethods.wasmtime_config_signals_based_traps_set(c, signals);
        }
        if (options.MemoryInitCopyOnWrite is { } cow)
        {
            NativeMethods.wasmtime_config_memory_init_cow_set(c, cow);
        }
        if (options.Pooling is { } pooling)
        {
            SetPooling(c, pooling);
        }
        // LIBRARY: wasm_engine_new_with_config unwraps Engine::new (c-api/src/engine.rs): an invalid
        // configuration panics across the C boundary and aborts the process, it never returns null or an
        // error. So what Wasmtime would refuse is checked here first (Validate), and a pool is sized by the
        // caller's validated settings.
        var engine = NativeMethods.wasm_engine_new_with_config(config.Surrender());
        Handle = new EngineHandle(engine);
    }

    /// <summary>
    /// Every setting Wasmtime's Engine::new would refuse (which, through the C API, aborts the process),
    /// each problem naming its setting.
    /// </summary>
    public static IReadOnlyList<string> Validate(NativeEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = new List<string>();
        var asyncStack = options.AsyncStackSize ?? DefaultAsyncStackSize;
        var wasmStack = options.MaxWasmStack ?? DefaultMaxWasmStack;
        if (wasmStack == 0)
        {
            problems.Add($"{nameof(NativeEngineOptions.MaxWasmStack)} must be greater than zero.");
        }
        if (asyncStack < wasmStack)
        {
            problems.Add($"{nameof(NativeEngineOptions.AsyncStackSize)} ({asyncStack}) must not be less than {nameof(NativeEngineOptions.MaxWasmStack)} ({wasmStack}).");
        }
        if (options.Pooling is { } pooling)
        {
            if (pooling.TotalCoreInstances == 0 || pooling.TotalMemories == 0 || pooling.TotalStacks == 0)
            {
                problems.Add("Pooling: total core instances, memories and stacks must be greater than zero when set.");
            }
            if (pooling.MaxMemorySize is { } size && size % 65536 != 0)
            {
                problems.Add($"Pooling: {nameof(NativePoolingOptions.MaxMemorySize)} ({size}) must be a multiple of the 64 KiB wasm page.");
            }
            var reservation = options.MemoryReservation ?? DefaultMemoryReservation;
            if (pooling.MaxMemorySize is { } max && max > reservation)
            {
                problems.Add($"Pooling: {nameof(NativePoolingOptions.MaxMemorySize)} ({max}) must not exceed {nameof(NativeEngineOptions.MemoryReservation)} ({reservation}).");
            }
        }
        return problems;
    }

    /// <summary>Wasmtime's default memory reservation on 64-bit hosts (4 GiB).</summary>
    public const ulong DefaultMemoryReservation = 4UL * 1024 * 1024 * 1024;

    /// <summary>Wasmtime's default async stack (async.h: 2 MiB).</summary>
    public const nuint DefaultAsyncStackSize = 2 * 1024 * 1024;

    /// <summary>Wasmtime's default maximum wasm stack (512 KiB).</summary>
    public const nuint DefaultMaxWasmStack = 512 * 1024;

    private static void SetPooling(nint config, NativePoolingOptions options)
    {
        using var pooling = new PoolingConfigHandle(NativeMethods.wasmtime_pooling_allocation_config_new());
        var p = pooling.DangerousGetHandle();
        if (options.TotalCoreInstances is { } instances)
        {
            NativeMethods.wasmtime_pooling_allocation_config_total_core_instances_set(p, instances);
        }
        if (options.TotalMemories is { } memories)
        {
            NativeMethods.wasmtime_pooling_allocation_config_total_memories_set(p, memories);
        }
        if (options.TotalTables is { } tables)
        {
            NativeMethods.wasmtime_pooling_allocation_config_total_tables_set(p, tables);
        }
        if (options.TotalStacks is { } stacks)
        {
            NativeMethods.wasmtime_pooling_allocation_config_total_stacks_set(p, stacks);
        }
        if (options.MaxMemorySize is { } memorySize)
        {
            NativeMethods.wasmtime_pooling_allocation_config_max_memory_size_set(p, memorySize);
        }
        if (options.TableElements is { } elements)
        {
            NativeMethods.wasmtime_pooling_allocation_config_table_elements_set(p, elements);
        }
        if (options.MaxCoreInstanceSize is { } instanceSize)
        {
            NativeMethods.wasmtime_pooling_allocation_config_max_core_instance_size_set(p, instanceSize);
        }
        if (options.MaxUnusedWarmSlots is { } warm)
        {
            NativeMethods.wasmtime_pooling_allocation_config_max_unused_warm_slots_set(p, warm);
        }
        if (options.LinearMemoryKeepResident is { } memoryResident)
        {
            NativeMethods.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(p, memoryResident);
        }
        if (options.TableKeepResident is { } tableResident)
        {
            NativeMethods.wasmtime_pooling_allocation_config_table_keep_resident_set(p, tableResident);
        }
        // The config copies the pooling settings; ours is deleted when this method returns.
        NativeMethods.wasmtime_pooling_allocation_strategy_set(config, p);
    }

    /// <summary>Advances the epoch: every guest past its deadline yields (or traps) at its next check.</summary>
    public void IncrementEpoch() => NativeMethods.wasmtime_engine_increment_epoch(Handle);

    public void Dispose() => Handle.Dispose();
}
