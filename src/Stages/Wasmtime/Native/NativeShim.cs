using System.Reflection;
using System.Runtime.InteropServices;

namespace Krustlet.Stages.Wasmtime.Native;

/// <summary>What a guest's mailbox says after a poll returned false.</summary>
public enum GuestParking
{
    /// <summary>Not parked: the guest yielded at an epoch deadline (its time slice ended) or is running.</summary>
    None = 0,

    /// <summary>Parked in poll_oneoff on a clock: wake it after <see cref="GuestMailbox.SleepDuration"/>.</summary>
    Sleeping = 1,

    /// <summary>Parked in sched_yield: wake it once it is at the back of the run queue.</summary>
    Yielding = 2,

    /// <summary>Woken: the next poll continues the guest.</summary>
    Woken = 3,
}

/// <summary>
/// The executor's native shim (<c>Shim/krustlet_wasm.c</c>, built into <c>libkrustlet_wasm.so</c> next to
/// this assembly): async host functions and output buffers in C, so no .NET code runs on a guest's fiber
/// stack. <see cref="Functions"/> hands its entry points to Wasmtime.
/// </summary>
internal static unsafe partial class NativeShim
{
    private const string Library = "krustlet_wasm";

    [LibraryImport(Library)] private static partial int kr_init(ShimApi* functions, nuint size);
    [LibraryImport(Library)] public static partial void kr_guest_clock_started(nint guest);
    [LibraryImport(Library)] public static partial void kr_guest_release(nint guest);
    [LibraryImport(Library)] public static partial nint kr_usage_new();
    [LibraryImport(Library)] public static partial ulong kr_usage_bytes(nint usage);
    [LibraryImport(Library)] public static partial void kr_usage_release(nint usage);
    [LibraryImport(Library)] public static partial void kr_usage_enter(nint usage);

    [StructLayout(LayoutKind.Sequential)]
    private struct ShimApi
    {
        public nint CallerExportGet;
        public nint CallerContext;
        public nint MemoryData;
        public nint MemoryDataSize;
        public nint ContextGetData;
        public nint EngineIncrementEpoch;
        public nint ErrorNew;
    }

    /// <summary>The shim's callbacks, by the name Wasmtime is given them under.</summary>
    public sealed record Entry(nint PollOneoff, nint SchedYield, nint WriteStdout, nint WriteStderr, nint NoopFinalizer, nint NewMemory, int MailboxSize);

    private static readonly Lazy<Entry> Loaded = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The loaded, initialized shim; throws <see cref="WasmtimeNativeException"/> when it cannot be.</summary>
    public static Entry Functions => Loaded.Value;

    private static Entry Load()
    {
        var assembly = typeof(NativeShim).Assembly;
        // The shim lies next to this assembly (also under a test host, whose base directory differs);
        // calls through [LibraryImport] resolve to that same file.
        var shim = Resolve(Library, assembly, null);
        if (shim == IntPtr.Zero && !NativeLibrary.TryLoad(Library, assembly, null, out shim))
        {
            throw new WasmtimeNativeException($"lib{Library}.so was not found next to {assembly.GetName().Name}.dll: it is built from src/Stages/Wasmtime/Native/Shim by the Stages project (clang needed)");
        }
        var wasmtime = NativeLibrary.Load("wasmtime", assembly, null);
        var api = new ShimApi
        {
            CallerExportGet = NativeLibrary.GetExport(wasmtime, "wasmtime_caller_export_get"),
            CallerContext = NativeLibrary.GetExport(wasmtime, "wasmtime_caller_context"),
            MemoryData = NativeLibrary.GetExport(wasmtime, "wasmtime_memory_data"),
            MemoryDataSize = NativeLibrary.GetExport(wasmtime, "wasmtime_memory_data_size"),
            ContextGetData = NativeLibrary.GetExport(wasmtime, "wasmtime_context_get_data"),
            EngineIncrementEpoch = NativeLibrary.GetExport(wasmtime, "wasmtime_engine_increment_epoch"),
            ErrorNew = NativeLibrary.GetExport(wasmtime, "wasmtime_error_new"),
        };
        var loaded = shim;
        NativeLibrary.SetDllImportResolver(assembly, (name, _, _) => name == Library ? loaded : IntPtr.Zero);
        var size = kr_init(&api, (nuint)sizeof(ShimApi));
        if (size != sizeof(GuestMailbox.Layout))
        {
            throw new WasmtimeNativeException($"the executor shim's mailbox is {size} bytes, this assembly expects {sizeof(GuestMailbox.Layout)}: lib{Library}.so is from another build");
        }
        return new Entry(
            NativeLibrary.GetExport(shim, "kr_poll_oneoff"),
            NativeLibrary.GetExport(shim, "kr_sched_yield"),
            NativeLibrary.GetExport(shim, "kr_write_stdout"),
            NativeLibrary.GetExport(shim, "kr_write_stderr"),
            NativeLibrary.GetExport(shim, "kr_noop_finalizer"),
            NativeLibrary.GetExport(shim, "kr_new_memory"),
            size);
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Library)
        {
            return IntPtr.Zero; // the default probing (wasmtime comes from the NuGet runtime assets)
        }
        var directory = Path.GetDirectoryName(assembly.Location);
        var candidate = directory is null ? null : Path.Combine(directory, $"lib{Library}.so");
        return candidate is not null && NativeLibrary.TryLoad(candidate, out var handle) ? handle : IntPtr.Zero;
    }
}

/// <summary>
/// One guest's mailbox in native memory (the shim's <c>kr_guest</c>): whether and how it parked, and
/// its buffered stdout and stderr. Written by the shim on the guest's stack during a poll; read, woken
/// and drained by .NET between polls. The store's data points at it; it outlives the store.
/// </summary>
public sealed unsafe class GuestMailbox : IDisposable
{
    [StructLayout(LayoutKind.Sequential)]
    internal struct Output
    {
        public byte* Data;
        public nuint Length;
        public nuint Capacity;
        public ulong Dropped;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct Layout
    {
        public nint User;
        public int State;
        public int Flags;
        public long SleepNanoseconds;
        public long MonotonicBase;
        public ulong Parks;
        public ulong MemoryBytes;
        public Output Stdout;
        public Output Stderr;
        public nint Engine;
        public int HighWaterHit;
        public int Lock;
    }

    private const int YieldAtHighWaterFlag = 1;

    private Layout* _mailbox;

    internal GuestMailbox(nint user)
    {
        _ = NativeShim.Functions; // the shim is loaded and its layout checked
        _mailbox = (Layout*)NativeMemory.AllocZeroed((nuint)sizeof(Layout));
        _mailbox->User = user;
    }

    internal nint Pointer => (nint)_mailbox;

    internal nint User => _mailbox->User;

    /// <summary>What the guest parked on at its last poll.</summary>
    public GuestParking Parking => (GuestParking)Volatile.Read(ref _mailbox->State);

    /// <summary>How long the guest asked to sleep (when <see cref="Parking"/> is <see cref="GuestParking.Sleeping"/>).</summary>
    public TimeSpan SleepDuration => TimeSpan.FromTicks(Math.Min(_mailbox->SleepNanoseconds / 100, TimeSpan.MaxValue.Ticks));

    /// <summary>How many times the guest parked.</summary>
    public ulong Parks => _mailbox->Parks;

    /// <summary>
    /// The bytes of the guest's linear memory (its <c>memory</c> export) when it last called
    /// <c>poll_oneoff</c> or <c>sched_yield</c>; 0 before its first such call. Between polls only.
    /// </summary>
    public ulong MemoryBytes => Volatile.Read(ref _mailbox->MemoryBytes);

    /// <summary>Output bytes lost because a guest wrote more than the shim buffers between two polls.</summary>
    public ulong DroppedBytes => _mailbox->Stdout.Dropped + _mailbox->Stderr.Dropped;

    /// <summary>
    /// Lets a parked guest continue at its next poll. From any thread; true when it was parked (a wake of
    /// a guest that is not parked does nothing).
    /// </summary>
    public bool Wake()
    {
        ref var state = ref _mailbox->State;
        var seen = Volatile.Read(ref state);
        return seen is (int)GuestParking.Sleeping or (int)GuestParking.Yielding
            && Interlocked.CompareExchange(ref state, (int)GuestParking.Woken, seen) == seen;
    }

    /// <summary>
    /// Ends the guest's time slice as soon as its buffered stdout reaches 256 KiB (the shim advances
    /// <paramref name="engine"/>'s epoch), so its output can be written on, with backpressure, before it
    /// goes on. For HTTP handlers, whose stdout is the response.
    /// </summary>
    internal void YieldAtOutputHighWater(nint engine)
    {
        _mailbox->Engine = engine;
        _mailbox->Flags |= YieldAtHighWaterFlag;
    }

    /// <summary>Bytes of stdout buffered now. Between polls only.</summary>
    public int StdoutLength => checked((int)_mailbox->Stdout.Length);

    /// <summary>Hands the bytes buffered for stdout (false) or stderr (true) to <paramref name="sink"/>, then empties the buffer. Between polls only.</summary>
    public void Drain(bool stderr, ReadOnlySpanAction<byte, object?> sink, object? state)
    {
        ArgumentNullException.ThrowIfNull(sink);
        var output = stderr ? &_mailbox->Stderr : &_mailbox->Stdout;
        if (Volatile.Read(ref *(nuint*)&output->Length) == 0)
        {
            return;
        }

        // Wasmtime may append from its own thread while the guest waits in fd_write (the shim's lock).
        ref var held = ref _mailbox->Lock;
        var spinner = default(SpinWait);
        while (Interlocked.Exchange(ref held, 1) != 0)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
        }

        try
        {
            if (output->Length == 0)
            {
                return;
            }
            sink(new ReadOnlySpan<byte>(output->Data, checked((int)output->Length)), state);
            output->Length = 0;
            if (!stderr)
            {
                _mailbox->HighWaterHit = 0;
            }
        }
        finally
        {
            Volatile.Write(ref held, 0);
        }
    }

    /// <summary>Marks when the guest's WASI clocks start (absolute monotonic sleeps count from there).</summary>
    internal void ClockStarted() => NativeShim.kr_guest_clock_started(Pointer);

    /// <summary>Frees the buffers and the mailbox; only after the store that points at it is deleted.</summary>
    public void Dispose()
    {
        if (_mailbox is null)
        {
            return;
        }
        NativeShim.kr_guest_release(Pointer);
        NativeMemory.Free(_mailbox);
        _mailbox = null;
    }
}

/// <summary>A span callback with a state argument (no closure per drain).</summary>
public delegate void ReadOnlySpanAction<T, in TState>(ReadOnlySpan<T> span, TState state);
