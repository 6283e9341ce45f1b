using System.Runtime.InteropServices;

namespace Krustlet.Stages.Wasmtime.Native;

/// <summary>Store limits (wasmtime_store_limiter); null keeps Wasmtime's default.</summary>
public sealed record NativeStoreLimits
{
    /// <summary>Bytes a linear memory may grow to; memory.grow beyond it fails (returns -1), it does not trap.</summary>
    public long? MemorySize { get; init; }

    /// <summary>Elements a table may grow to.</summary>
    public long? TableElements { get; init; }

    public long? Instances { get; init; }
    public long? Tables { get; init; }
    public long? Memories { get; init; }
}

/// <summary>A guest's WASI preview 1 context: argv, environment, output files and preopened directories.</summary>
public sealed record NativeWasiOptions
{
    public IReadOnlyList<string> Args { get; init; } = [];
    public IReadOnlyList<KeyValuePair<string, string>> Environment { get; init; } = [];

    /// <summary>File that receives the guest's stdout (created or truncated); null discards it.</summary>
    public string? StdoutPath { get; init; }

    /// <summary>File that receives the guest's stderr (created or truncated); null discards it.</summary>
    public string? StderrPath { get; init; }

    public IReadOnlyList<NativePreopen> Preopens { get; init; } = [];

    /// <summary>
    /// Buffer stdout and stderr in the store's <see cref="NativeStore.Mailbox"/> (drain it between polls)
    /// instead of files; the paths above then take precedence only if set.
    /// </summary>
    public bool CaptureOutput { get; init; }

    /// <summary>What the guest reads on stdin, then end of file; without, stdin is closed (reads end at once).</summary>
    public ReadOnlyMemory<byte>? Stdin { get; init; }

    /// <summary>
    /// With <see cref="CaptureOutput"/>: 256 KiB of buffered stdout ends the guest's time slice, so the
    /// embedder writes it on before the guest produces more (an HTTP response streams with backpressure).
    /// </summary>
    public bool YieldAtOutputHighWater { get; init; }
}

public sealed record NativePreopen(string HostPath, string GuestPath, bool Mutable);

/// <summary>
/// A store (wasmtime_store_t) and its context: one guest's instances, memories, limits, WASI state, fuel and
/// epoch deadline. A store may move between threads but is never used by two at once; while a
/// <see cref="GuestFuture"/> of it is alive nothing else may touch it (async.h), which this type enforces.
/// </summary>
public sealed class NativeStore : IDisposable
{
    private readonly nint _context;
    private readonly NativeEngine _engine;
    private GCHandle _self;
    private int _busy;

    internal StoreHandle Handle { get; }

    public NativeStore(NativeEngine engine)
    {
        ArgumentNullException.ThrowIfNull(engine);
        // The store's data is the guest's mailbox, which the executor shim's host functions write; it
        // holds a weak handle back to this object, so a .NET async host function (which only sees the
        // native context) can tell the store which host call its guest is parked on.
        _self = GCHandle.Alloc(this, GCHandleType.Weak);
        Mailbox = new GuestMailbox(GCHandle.ToIntPtr(_self));
        _engine = engine;
        var store = NativeMethods.wasmtime_store_new(engine.Handle, Mailbox.Pointer, IntPtr.Zero);
        Handle = new StoreHandle(store, Mailbox);
        _context = NativeMethods.wasmtime_store_context(Handle);
    }

    /// <summary>The guest's mailbox: whether it parked in the shim's host functions, and its buffered output.</summary>
    public GuestMailbox Mailbox { get; }

    /// <summary>Sets the store's resource limits; they apply to later growth and instantiation only.</summary>
    public void SetLimits(NativeStoreLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        EnsureIdle();
        NativeMethods.wasmtime_store_limiter(Handle, limits.MemorySize ?? -1, limits.TableElements ?? -1,
            limits.Instances ?? -1, limits.Tables ?? -1, limits.Memories ?? -1);
    }

    /// <summary>The guest traps with Interrupt once the engine epoch passes the current one plus <paramref name="ticks"/>.</summary>
    public void SetEpochDeadline(ulong ticks)
    {
        using var alive = KeepAlive();
        NativeMethods.wasmtime_context_set_epoch_deadline(_context, ticks);
    }

    /// <summary>
    /// At each epoch deadline the guest yields (the poll returns false) and the deadline moves
    /// <paramref name="delta"/> ticks on, instead of trapping: a time slice.
    /// </summary>
    public void YieldAtEpochDeadline(ulong delta)
    {
        using var alive = KeepAlive();
        NativeMethods.wasmtime_context_epoch_deadline_async_yield_and_update(_context, delta);
    }

    public void SetFuel(ulong fuel)
    {
        using var alive = KeepAlive();
        WasmtimeNativeException.ThrowIfError(NativeMethods.wasmtime_context_set_fuel(_context, fuel));
    }

    public unsafe ulong GetFuel()
    {
        using var alive = KeepAlive();
        ulong fuel;
        WasmtimeNativeException.ThrowIfError(NativeMethods.wasmtime_context_get_fuel(_context, &fuel));
        return fuel;
    }

    /// <summary>The guest yields each time it burns <paramref name="interval"/> fuel (0 turns it off).</summary>
    public void YieldEveryFuel(ulong interval)
    {
        using var alive = KeepAlive();
        WasmtimeNativeException.ThrowIfError(NativeMethods.wasmtime_context_fuel_async_yield_interval(_context, interval));
    }

    /// <summary>Gives the store its WASI context; required before instantiating with a linker that defines WASI.</summary>
    public unsafe void SetWasi(NativeWasiOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        using var wasi = new WasiConfigHandle(NativeMethods.wasi_config_new());
        var w = wasi.DangerousGetHandle();
        WasiConfigParts.SetCommandLine(w, options.Args, options.Environment);
        if (options.CaptureOutput)
        {
            // Into the mailbox's buffers, by the shim (it runs on the guest's stack); drained between polls.
            var shim = NativeShim.Functions;
            NativeMethods.wasi_config_set_stdout_custom(w, shim.WriteStdout, Mailbox.Pointer, shim.NoopFinalizer);
            NativeMethods.wasi_config_set_stderr_custom(w, shim.WriteStderr, Mailbox.Pointer, shim.NoopFinalizer);
            if (options.YieldAtOutputHighWater)
            {
                Mailbox.YieldAtOutputHighWater(_engine.Handle.DangerousGetHandle());
            }
        }
        if (options.Stdin is { } stdin)
        {
            WasmByteVec bytes;
            fixed (byte* data = stdin.Span)
            {
                NativeMethods.wasm_byte_vec_new(&bytes, (nuint)stdin.Length, data);
            }
            NativeMethods.wasi_config_set_stdin_bytes(w, &bytes); // takes the vector's contents
        }
        if (options.StdoutPath is { } stdout)
        {
            using var path = new Utf8Array([stdout]);
            WasiConfigParts.Check(NativeMethods.wasi_config_set_stdout_file(w, path.Pointers[0]), $"wasi_config_set_stdout_file({stdout})");
        }
        if (options.StderrPath is { } stderr)
        {
            using var path = new Utf8Array([stderr]);
            WasiConfigParts.Check(NativeMethods.wasi_config_set_stderr_file(w, path.Pointers[0]), $"wasi_config_set_stderr_file({stderr})");
        }
        WasiConfigParts.Preopen(w, options.Preopens);
        using var alive = KeepAlive();
        Mailbox.ClockStarted();
        // The context takes the WASI config even when it returns an error.
        WasmtimeNativeException.ThrowIfError(NativeMethods.wasmtime_context_set_wasi(_context, wasi.Surrender()));

    }

    /// <summary>Calls an exported function as a future: poll it until it completes.</summary>
    public unsafe GuestFuture CallAsync(NativeFunction function, ReadOnlySpan<long> args, int results)
    {
        ArgumentNullException.ThrowIfNull(function);
        if (function.Store != this)
        {
            throw new ArgumentException("The function belongs to another store.", nameof(function));
        }
        return GuestFuture.Start(this, args, results, (block, vals, nargs, nresults) =>
            NativeMethods.wasmtime_func_call_async(_context, &block->Item, vals, nargs, vals + nargs, nresults, &block->Trap, &block->Error),
            item: function.Item);
    }

    /// <summary>Marks the store busy for a future's life; a second future or any other use fails meanwhile.</summary>
    internal void Enter()
    {
        if (Interlocked.Exchange(ref _busy, 1) != 0)
        {
            throw new InvalidOperationException("The store is running a guest future; only one may be alive per store, and nothing else may use the store meanwhile.");
        }
    }

    internal void Leave() => Volatile.Write(ref _busy, 0);

    internal nint RawContext => _context;

    internal void EnsureIdle()
    {
        if (Volatile.Read(ref _busy) != 0)
        {
            throw new InvalidOperationException("The store is running a guest future.");
        }
    }

    /// <summary>Checks the store is idle and keeps it from being deleted while its context pointer is in use.</summary>
    private NativeHandle.Lease KeepAlive()
    {
        EnsureIdle();
        return Handle.Borrow();
    }

    /// <summary>Deletes the store; fails while a future of it is alive (dispose the future first).</summary>
    public void Dispose()
    {
        EnsureIdle();
        Handle.Dispose();
        if (Handle.IsClosed && _self.IsAllocated)
        {
            _self.Free();
        }
    }

    /// <summary>The host call the running guest waits on, set by an async host function; null when none.</summary>
    internal HostCall? ParkedOn { get; set; }

    /// <summary>The store whose context this is (from the store's data), or null once it is gone.</summary>
    internal static unsafe NativeStore? FromContext(nint context)
    {
        var data = NativeMethods.wasmtime_context_get_data(context);
        var user = data == IntPtr.Zero ? IntPtr.Zero : ((GuestMailbox.Layout*)data)->User;
        return user == IntPtr.Zero ? null : GCHandle.FromIntPtr(user).Target as NativeStore;
    }
}
