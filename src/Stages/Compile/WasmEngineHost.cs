using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Configuration;
using Krustlet.Stages.Run.Executor;
using Wasmtime;

namespace Krustlet.Stages.Compile;

/// <summary>Settings of the shared Wasmtime engine (configuration section <c>Wasm</c>).</summary>
public sealed record WasmEngineOptions
{
    public const string SectionName = "Wasm";

    /// <summary><c>Wasm:FuelEnabled</c>: meter every instruction; a container that runs out traps with OutOfFuel.</summary>
    public bool FuelEnabled { get; init; }

    /// <summary><c>Wasm:FuelPerContainer</c>: the fuel each container run starts with when fuel is enabled.</summary>
    public ulong FuelPerContainer { get; init; } = 1_000_000_000_000;

    /// <summary><c>Wasm:EpochTick</c>: how often the engine epoch advances; a kill or deadline takes effect within about one tick.</summary>
    public TimeSpan EpochTick { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// <c>Wasm:CompactMemories</c>: give each linear memory a plain heap allocation instead of a reserved
    /// virtual-memory region with guard pages (Wasmtime's signals-based traps, memory reservation, guard
    /// and copy-on-write image all off). Every guest memory access then pays an explicit bounds check, but
    /// a running container needs about three fewer address-space mappings, which raises how many
    /// containers fit under the kernel's vm.max_map_count (docs/benchmarks.md, density). Off by default.
    /// </summary>
    public bool CompactMemories { get; init; }

    /// <summary>
    /// <c>Wasm:MaxContainerMemory</c>: the bytes each linear memory and each table of one container may
    /// reach when its pod sets no <c>limits.memory</c>, and the ceiling for one that sets more. Every
    /// guest runs inside the agent's process, so this keeps a pod without limits from taking the node.
    /// </summary>
    public long MaxContainerMemory { get; init; } = DefaultMaxContainerMemory;

    /// <summary>
    /// <c>Wasm:ExecutorThreads</c>: the threads that poll every running core-module guest (0: one per core).
    /// A guest holds one only while it runs; a sleeping guest holds none.
    /// </summary>
    public int ExecutorThreads { get; init; }

    /// <summary>
    /// <c>Wasm:PoolSlots</c>: instance slots in Wasmtime's pool (each with its memory, table and fiber
    /// stack), reserved at start; 0 sizes it from <c>Node:MaxPods</c>. A container that finds the pool
    /// full fails to start with that reason and is retried with backoff.
    /// </summary>
    public int PoolSlots { get; init; }

    /// <summary>The default of <see cref="MaxContainerMemory"/>: 2 GiB.</summary>
    public const long DefaultMaxContainerMemory = 2L * 1024 * 1024 * 1024;

    /// <summary>
    /// Reads <c>Wasm:*</c> over the defaults. Returns the options, or null and every problem found, each
    /// naming its setting.
    /// </summary>
    public static (WasmEngineOptions? Options, IReadOnlyList<string> Problems) Read(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(SectionName);
        var problems = new List<string>();
        var defaults = new WasmEngineOptions();

        var fuelEnabled = defaults.FuelEnabled;
        if (section[nameof(FuelEnabled)] is { } rawEnabled && !bool.TryParse(rawEnabled, out fuelEnabled))
        {
            problems.Add($"{section.Path}:{nameof(FuelEnabled)} must be true or false (got '{rawEnabled}').");
        }

        var fuel = defaults.FuelPerContainer;
        if (section[nameof(FuelPerContainer)] is { } rawFuel && (!ulong.TryParse(rawFuel, NumberStyles.None, CultureInfo.InvariantCulture, out fuel) || fuel == 0))
        {
            problems.Add($"{section.Path}:{nameof(FuelPerContainer)} must be a whole number greater than zero (got '{rawFuel}').");
        }

        var tick = defaults.EpochTick;
        if (section[nameof(EpochTick)] is { } rawTick && (!TimeSpan.TryParse(rawTick, CultureInfo.InvariantCulture, out tick) || tick <= TimeSpan.Zero))
        {
            problems.Add($"{section.Path}:{nameof(EpochTick)} must be a positive duration such as 00:00:00.010 (got '{rawTick}').");
        }

        var compact = defaults.CompactMemories;
        if (section[nameof(CompactMemories)] is { } rawCompact && !bool.TryParse(rawCompact, out compact))
        {
            problems.Add($"{section.Path}:{nameof(CompactMemories)} must be true or false (got '{rawCompact}').");
        }

        var threads = defaults.ExecutorThreads;
        if (section[nameof(ExecutorThreads)] is { } rawThreads && (!int.TryParse(rawThreads, NumberStyles.None, CultureInfo.InvariantCulture, out threads) || threads > 256))
        {
            problems.Add($"{section.Path}:{nameof(ExecutorThreads)} must be a whole number from 0 (one per core) to 256 (got '{rawThreads}').");
        }

        var slots = defaults.PoolSlots;
        if (section[nameof(PoolSlots)] is { } rawSlots && (!int.TryParse(rawSlots, NumberStyles.None, CultureInfo.InvariantCulture, out slots) || slots > 1_000_000))
        {
            problems.Add($"{section.Path}:{nameof(PoolSlots)} must be a whole number from 0 (sized from Node:MaxPods) to 1000000 (got '{rawSlots}').");
        }

        return problems.Count == 0
            ? (new WasmEngineOptions { FuelEnabled = fuelEnabled, FuelPerContainer = fuel, EpochTick = tick, CompactMemories = compact, ExecutorThreads = threads, PoolSlots = slots }, problems)
            : (null, problems);
    }
}

/// <summary>
/// The agent's Wasmtime engines and the timer that advances their epoch: <see cref="Native"/>, the
/// executor's pooled async engine that compiles and runs every core module on a few threads, and
/// <see cref="Engine"/> (Wasmtime.Dotnet), which compiles and runs components on dedicated threads.
/// </summary>
public sealed class WasmEngineHost : IDisposable
{
    private readonly Thread _ticker;
    private readonly ManualResetEventSlim _stopTicking = new(false, spinCount: 0);

    public WasmEngineHost(WasmEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.EpochTick <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "Wasm:EpochTick must be positive.");
        }

        Options = options;
        using var config = new Config()
            .WithEpochInterruption(true)
            .WithFuelConsumption(options.FuelEnabled)
            .WithOptimizationLevel(OptimizationLevel.Speed);
        if (options.CompactMemories)
        {
            config
                .WithSignalsBasedTraps(false)
                .WithStaticMemoryMaximumSize(0)
                .WithMemoryGuardSize(0)
                .WithMemoryInitCopyOnWrite(false);
        }

        // Every linear memory of the component engine is made by the shim, which counts it for the run
        // that made it (the kubelet API's memory figures; components are out of the C API's reach).
        Wasmtime.Native.ComponentMemory.InstallOn(config);
        Native = ExecutorEngine.Create(options);
        try
        {
            Engine = new Engine(config);
            Fingerprint = ComputeFingerprint(options);
        }
        catch
        {
            Native.Dispose();
            throw;
        }

        // The epoch must advance in real time whatever clock the rest of the agent uses: each tick ends
        // the time slice of every running core-module guest and lets a component see a kill.
        _ticker = new Thread(Tick) { IsBackground = true, Name = "wasm-epoch" };
        _ticker.Start();
    }

    /// <summary>Wasmtime.Dotnet's engine: components only (WASI 0.2 runs on its own threads, docs/architecture.md).</summary>
    public Engine Engine { get; }

    /// <summary>The executor's engine, WASI linker and scheduler: every core module compiles and runs here.</summary>
    public ExecutorEngine Native { get; }

    public WasmEngineOptions Options { get; }

    /// <summary>The Wasmtime version the agent runs on, for example "50.0.1".</summary>
    public static string WasmtimeVersion { get; } =
        typeof(Engine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "unknown";

    /// <summary>
    /// Identifies everything that makes a compiled artifact usable: the Wasmtime version, the engine
    /// settings that change generated code, and the machine architecture. Part of every cache key.
    /// </summary>
    public string Fingerprint { get; }

    public void Dispose()
    {
        _stopTicking.Set();
        _ticker.Join();
        _stopTicking.Dispose();
        Native.Dispose();
        Engine.Dispose();
    }

    /// <summary>
    /// Advances both epochs every <see cref="WasmEngineOptions.EpochTick"/> on a thread of its own. A
    /// System.Threading.Timer would fire on the thread pool, whose workers spin after every callback:
    /// a quarter of the agent's CPU at 100 ticks a second (perf, docs/benchmarks.md).
    /// </summary>
    private void Tick()
    {
        while (!_stopTicking.Wait(Options.EpochTick))
        {
            Native.Engine.IncrementEpoch();
            Engine.IncrementEpoch();
        }
    }

    private static string ComputeFingerprint(WasmEngineOptions options)
    {
        var description = string.Create(
            CultureInfo.InvariantCulture,
            $"wasmtime={WasmtimeVersion};arch={RuntimeInformation.ProcessArchitecture};epoch=1;fuel={(options.FuelEnabled ? 1 : 0)};opt=speed;executor=pooled-async{(options.CompactMemories ? $";compact=1;memory={options.MaxContainerMemory}" : string.Empty)}");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(description)))[..16];
    }
}
