using System.Globalization;
using System.Text.RegularExpressions;
using Krustlet.Stages.Compile;
using Wasmtime;
using Wasmtime.Components;

namespace Krustlet.Stages.Run;

/// <summary>
/// How container runs end, for both runtimes, and the component runner: <see cref="Run"/> runs a WASI 0.2
/// component to its end on the calling thread (a fresh store with the container's limits, WASI with its
/// arguments, environment, mounts and log, then <c>wasi:cli/run</c>); the executor pool gives each such
/// run a dedicated thread. Core modules run on the executor instead (<see cref="Executor.ModuleGuest"/>).
/// </summary>
public static partial class WasmContainerRunner
{
    private static readonly string[] RunInterfaceVersions = [.. Enumerable.Range(0, 10).Select(v => $"wasi:cli/run@0.2.{v}")];

    public static ContainerExit Run(WasmEngineHost host, ContainerLaunch launch, ContainerControl control, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(launch);
        if (launch.Artifact.Kind != WasmBinaryKind.Component)
        {
            throw new ArgumentException("Core modules run on the executor (ModuleGuest), not on a thread of their own.", nameof(launch));
        }

        ArgumentNullException.ThrowIfNull(control);
        ArgumentNullException.ThrowIfNull(time);

        var startedAt = time.GetUtcNow();
        using var log = new CriLogWriter(launch.LogPath, launch.LogRotation, time);
        using var memory = new Wasmtime.Native.ComponentMemoryUsage(); // outlives the store, whose memories hold it
        try
        {
            using var store = new Store(host.Engine);
            var limit = MemoryLimit(launch.MemoryLimitBytes, host.Options.MaxContainerMemory);
            store.SetLimits(memorySize: limit, tableElements: TableElementsWithin(limit), instances: MaxInstances, tables: MaxTables, memories: MaxMemories);

            if (host.Options.FuelEnabled)
            {
                store.Fuel = host.Options.FuelPerContainer;
            }

            // Built with the C API rather than WasiConfiguration, which has no network options.
            Wasmtime.Native.ComponentWasi.Set(store, new Wasmtime.Native.ComponentWasiOptions
            {
                Args = launch.Argv,
                Environment = launch.Env,
                Preopens = [.. launch.Mounts.Select(m => new Wasmtime.Native.NativePreopen(m.HostPath, m.GuestPath, !m.ReadOnly))],
                Stdout = data => log.Write(LogStream.Stdout, data),
                Stderr = data => log.Write(LogStream.Stderr, data),
                OutboundNetwork = launch.OutboundNetwork,
            });

            // Check for a kill or a deadline at every epoch tick; throwing ends the guest. The tick also
            // samples this thread's CPU time, which is the component's (the thread runs nothing else),
            // and its memory: the linear memories the engine's memory creator counted for this run
            // (Wasmtime.Native.ComponentMemory), plus its tables as declared.
            var cpuBase = ContainerUsage.ThreadCpuNanoseconds();
            void Sample()
            {
                control.Usage.SetCpu(ContainerUsage.ThreadCpuNanoseconds() - cpuBase);
                control.Usage.SetMemory(memory.Bytes + launch.Artifact.TableBytes);
            }

            store.SetEpochDeadline(1);
            store.SetEpochDeadlineCallback(_ =>
            {
                Sample();
                return control.ShouldStop(out var cause) ? throw new ContainerKilledException(cause.Message) : 1UL;
            });

            memory.Enter();
            try
            {
                var exitCode = RunComponent(host, store, launch.Artifact.Component!);
                return Exited(exitCode, startedAt, time);
            }
            finally
            {
                Wasmtime.Native.ComponentMemoryUsage.Leave();
                Sample();
            }
        }
        catch (WasmtimeException ex) when (FindKill(ex) is { } killed)
        {
            return new ContainerExit(ExitKind.Killed, ContainerExit.KilledExitCode, KubeletReasons.Error, $"killed: {killed.Message}", startedAt, time.GetUtcNow());
        }
        catch (WasmtimeException ex) when (ex.ExitCode is { } code)
        {
            return Exited(code, startedAt, time);
        }
        catch (TrapException ex)
        {
            return new ContainerExit(ExitKind.Trapped, ContainerExit.TrapExitCode, KubeletReasons.Error, $"wasm trap: {Describe(ex.Type)}{TrapDetail(ex.Message)}", startedAt, time.GetUtcNow());
        }
        catch (WasmtimeException ex) when (OverLimit(ex.Message, launch, host) is { } message)
        {
            return new ContainerExit(ExitKind.OutOfMemory, ContainerExit.KilledExitCode, KubeletReasons.OOMKilled, message, startedAt, time.GetUtcNow());
        }
        catch (Exception ex) when (ex is WasmtimeException or ContainerStartException)
        {
            return new ContainerExit(ExitKind.FailedToStart, 128, KubeletReasons.StartError, FirstLine(ex.Message), startedAt, time.GetUtcNow());
        }
    }

    /// <summary>The bytes one table element takes as Wasmtime stores it (a pointer; GC references take 4).</summary>
    public const int TableElementBytes = 8;

    // Wasmtime's defaults are 10,000 of each; a core module has one instance and, from wasi-libc, Rust
    // or a component's main module, one memory and one table. The limit bounds each memory and each
    // table, so these counts bound what one guest can hold: at most (memories + tables) x the limit.
    internal const long MaxInstances = 64;
    internal const long MaxTables = 16;
    internal const long MaxMemories = 16;

    /// <summary>
    /// The bytes a container's memories and tables may each grow to: its <c>limits.memory</c>, never more
    /// than the node-wide <c>Wasm:MaxContainerMemory</c>, which also bounds containers that set none.
    /// </summary>
    public static long MemoryLimit(long? podLimit, long nodeCap) => podLimit is { } limit ? Math.Min(limit, nodeCap) : nodeCap;

    /// <summary>How many table elements fit in <paramref name="limit"/> bytes.</summary>
    public static uint TableElementsWithin(long limit) => (uint)Math.Clamp(limit / TableElementBytes, 0, uint.MaxValue);

    private static int RunComponent(WasmEngineHost host, Store store, Component component)
    {
        using var linker = new ComponentLinker(host.Engine);
        linker.AddWasiPreview2();
        var instance = linker.Instantiate(store, component);
        var run = RunInterfaceVersions.Select(v => instance.GetFunction(v, "run")).FirstOrDefault(f => f is not null)
            ?? throw new ContainerStartException("the component exports no wasi:cli/run@0.2 interface");
        var result = run.Call([]);
        return result is { Kind: ComponentValueKind.Result, IsOk: false } ? 1 : 0;
    }

    /// <summary>How a core-module run on the executor ended, from what its future threw.</summary>
    internal static ContainerExit Outcome(Wasmtime.Native.WasmtimeNativeException ex, ContainerLaunch launch, WasmEngineHost host, DateTimeOffset startedAt, TimeProvider time)
    {
        switch (ex)
        {
            case Wasmtime.Native.GuestExitException exit:
                return Exited(exit.ExitCode, startedAt, time);
            case Wasmtime.Native.WasmTrapException { Code: { } code } trap:
                return new ContainerExit(ExitKind.Trapped, ContainerExit.TrapExitCode, KubeletReasons.Error, $"wasm trap: {Describe(code)}{TrapDetail(trap.Message)}", startedAt, time.GetUtcNow());
        }

        if (OverLimit(ex.Message, launch, host) is { } message)
        {
            return new ContainerExit(ExitKind.OutOfMemory, ContainerExit.KilledExitCode, KubeletReasons.OOMKilled, message, startedAt, time.GetUtcNow());
        }

        var first = FirstLine(ex.Message);
        if (StartArity().Match(first) is { Success: true } arity)
        {
            // _start called as a WASI command is (): a module whose _start takes or returns values is not one.
            first = $"the module's _start {(arity.Groups["what"].Value == "arguments" ? "takes" : "returns")} {arity.Groups["count"].Value} {(arity.Groups["what"].Value == "arguments" ? "parameter" : "result")}(s): a WASI command's _start takes none and returns nothing";
        }

        if (first.Contains("concurrent", StringComparison.Ordinal) && first.Contains("limit of", StringComparison.Ordinal))
        {
            first = $"the node's Wasmtime pool is full ({host.Native.Layout.Slots} slots, Wasm:PoolSlots): {first}";
        }

        return new ContainerExit(ExitKind.FailedToStart, 128, KubeletReasons.StartError, first, startedAt, time.GetUtcNow());
    }

    private static string Describe(Wasmtime.Native.WasmTrapCode code) => code switch
    {
        Wasmtime.Native.WasmTrapCode.UnreachableCodeReached => "unreachable",
        Wasmtime.Native.WasmTrapCode.StackOverflow => "stack overflow",
        Wasmtime.Native.WasmTrapCode.OutOfFuel => "out of fuel",
        Wasmtime.Native.WasmTrapCode.MemoryOutOfBounds => "out-of-bounds memory access",
        Wasmtime.Native.WasmTrapCode.IntegerDivisionByZero => "integer divide by zero",
        Wasmtime.Native.WasmTrapCode.IntegerOverflow => "integer overflow",
        Wasmtime.Native.WasmTrapCode.IndirectCallToNull => "indirect call to null",
        Wasmtime.Native.WasmTrapCode.BadSignature => "indirect call type mismatch",
        Wasmtime.Native.WasmTrapCode.TableOutOfBounds => "undefined element: out of bounds table access",
        Wasmtime.Native.WasmTrapCode.BadConversionToInteger => "invalid conversion to integer",
        Wasmtime.Native.WasmTrapCode.Interrupt => "interrupt",
        Wasmtime.Native.WasmTrapCode.HeapMisaligned => "misaligned memory access",
        _ => code.ToString().ToLower(CultureInfo.InvariantCulture),
    };

    // Wasmtime refuses at instantiation a memory or table whose declared minimum is over the store's
    // limits ("table minimum size of N elements exceeds table limits", "memory minimum size of N pages
    // exceeds memory limits"): the guest needed more than its limit before it could run.
    private static string? OverLimit(string message, ContainerLaunch launch, WasmEngineHost host)
    {
        var first = FirstLine(message);
        var limit = MemoryLimit(launch.MemoryLimitBytes, host.Options.MaxContainerMemory);
        var whose = launch.MemoryLimitBytes is { } own && own <= host.Options.MaxContainerMemory
            ? $"the container's memory limit of {limit} bytes"
            : $"the node's per-container memory cap (Wasm:MaxContainerMemory) of {limit} bytes";
        var match = MinimumOverLimit().Match(first);
        if (!match.Success || !long.TryParse(match.Groups["count"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var count))
        {
            return null;
        }

        return match.Groups["kind"].Value == "table"
            ? string.Create(CultureInfo.InvariantCulture, $"the module's table of {count} elements needs {count * TableElementBytes} bytes, over {whose}")
            : string.Create(CultureInfo.InvariantCulture, $"the module's memory of {count} pages needs {count * 65536} bytes, over {whose}");
    }

    [GeneratedRegex(@"^expected (?<count>\d+) (?<what>arguments|results), got 0$", RegexOptions.CultureInvariant)]
    private static partial Regex StartArity();

    [GeneratedRegex(@"^\d+:\s+(?<frame>.+)$", RegexOptions.CultureInvariant)]
    private static partial Regex BacktraceFrame();

    /// <summary>
    /// Where a trap happened, for its message: Wasmtime's first line when it says something, else (it
    /// starts "error while executing at wasm backtrace:") the innermost frame of its backtrace.
    /// </summary>
    internal static string TrapDetail(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0)
        {
            return string.Empty;
        }

        if (!lines[0].StartsWith("error while executing at wasm backtrace", StringComparison.Ordinal))
        {
            return $": {lines[0]}";
        }

        var frame = lines.Skip(1).Select(l => BacktraceFrame().Match(l)).FirstOrDefault(m => m.Success);
        return frame is null ? string.Empty : $", at {frame.Groups["frame"].Value}";
    }

    [GeneratedRegex(@"^(?<kind>table|memory) minimum size of (?<count>\d+) (elements|pages) exceeds (table|memory) limits", RegexOptions.CultureInvariant)]
    private static partial Regex MinimumOverLimit();

    private static ContainerExit Exited(int code, DateTimeOffset startedAt, TimeProvider time) =>
        new(ExitKind.Exited, code, code == 0 ? KubeletReasons.Completed : KubeletReasons.Error, null, startedAt, time.GetUtcNow());

    private static ContainerKilledException? FindKill(Exception ex)
    {
        for (var e = ex.InnerException; e is not null; e = e.InnerException)
        {
            if (e is ContainerKilledException killed)
            {
                return killed;
            }
        }

        return null;
    }

    private static string Describe(TrapCode code) => code switch
    {
        TrapCode.Unreachable => "unreachable",
        TrapCode.StackOverflow => "stack overflow",
        TrapCode.OutOfFuel => "out of fuel",
        TrapCode.MemoryOutOfBounds => "out-of-bounds memory access",
        TrapCode.IntegerDivisionByZero => "integer divide by zero",
        TrapCode.IntegerOverflow => "integer overflow",
        TrapCode.IndirectCallToNull => "indirect call to null",
        TrapCode.BadSignature => "indirect call type mismatch",
        TrapCode.TableOutOfBounds => "undefined element: out of bounds table access",
        TrapCode.BadConversionToInteger => "invalid conversion to integer",
        TrapCode.Interrupt => "interrupt",
        _ => code.ToString().ToLower(CultureInfo.InvariantCulture),
    };

    internal static string FirstLine(string message) =>
        message.Split('\n', 2, StringSplitOptions.TrimEntries)[0];
}

/// <summary>Thrown from the epoch callback to end a guest the agent is stopping.</summary>
internal sealed class ContainerKilledException(string reason) : Exception(reason);

/// <summary>The container cannot start: no entry point.</summary>
internal sealed class ContainerStartException(string message) : Exception(message);
