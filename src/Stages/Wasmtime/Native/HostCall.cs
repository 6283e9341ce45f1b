using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Krustlet.Stages.Wasmtime.Native;

/// <summary>
/// Runs when a guest calls an async host function. It runs on the guest's stack, inside a poll: keep it
/// short, do not block, and return a <see cref="HostCall"/> that the host completes later (from any thread).
/// </summary>
public delegate HostCall AsyncHostFunction(HostCallContext context);

/// <summary>The arguments of an async host call and read access to the caller's exported memory.</summary>
public readonly unsafe ref struct HostCallContext
{
    private readonly WasmtimeVal* _args;
    private readonly nint _caller;

    internal HostCallContext(WasmtimeVal* args, int count, nint caller)
    {
        _args = args;
        Count = count;
        _caller = caller;
    }

    public int Count { get; }

    public int GetI32(int index) => Arg(index).I32;

    public long GetI64(int index) => Arg(index).I64;

    /// <summary>Copies guest memory at <paramref name="offset"/>; false when the caller exports no memory or the range is outside it.</summary>
    public bool TryReadMemory(uint offset, Span<byte> destination)
    {
        if (!GuestMemory.TryGet(_caller, out var data, out var size) || (ulong)offset + (ulong)destination.Length > size)
        {
            return false;
        }
        new ReadOnlySpan<byte>(data + offset, destination.Length).CopyTo(destination);
        return true;
    }

    private WasmtimeVal Arg(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return _args[index];
    }
}

/// <summary>Bytes a completing host call writes into the caller's memory (e.g. poll_oneoff's events).</summary>
public readonly record struct GuestMemoryWrite(uint Offset, byte[] Bytes);

/// <summary>
/// One host call a guest waits on. The host ends it with <see cref="Complete"/> or <see cref="Fail"/>;
/// the guest sees the results at its next poll (a poll before that returns false at once).
/// <see cref="WhenCompleted"/> tells an executor when polling again makes progress. Use each once.
/// </summary>
public sealed unsafe class HostCall
{
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long[] _results = [];
    private IReadOnlyList<GuestMemoryWrite> _writes = [];
    private string? _trap;
    private const int Open = 0, Finishing = 1, Done = 2;
    private int _finished; // Open → Finishing (one completer wins) → Done (results visible)

    // Set when the guest's call is attached (on the guest's stack); kept alive by Wasmtime until the
    // continuation reports completion (async.h).
    private int _attached;
    private nint _caller;
    private WasmtimeVal* _resultSlots;
    private WasmValueKind[] _resultKinds = [];
    private nint* _trapSlot;
    private NativeStore? _store;

    /// <summary>A call the host completes later.</summary>
    public static HostCall Pending() => new();

    /// <summary>A call that is complete at once (the guest does not yield).</summary>
    public static HostCall Ready(params long[] results)
    {
        var call = new HostCall();
        call.Complete(results);
        return call;
    }

    public bool IsCompleted => Volatile.Read(ref _finished) == Done;

    /// <summary>Completes when the call is completed or failed.</summary>
    public Task WhenCompleted => _completion.Task;

    /// <summary>Ends the call with results (one per declared result, as i32 or i64) and optional memory writes. False if already ended.</summary>
    public bool Complete(long[] results, IReadOnlyList<GuestMemoryWrite>? memoryWrites = null)
    {
        ArgumentNullException.ThrowIfNull(results);
        return Finish(results, memoryWrites ?? [], trap: null);
    }

    /// <summary>Ends the call with a trap carrying <paramref name="message"/>. False if already ended.</summary>
    public bool Fail(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return Finish([], [], message);
    }

    private bool Finish(long[] results, IReadOnlyList<GuestMemoryWrite> writes, string? trap)
    {
        if (Interlocked.CompareExchange(ref _finished, Finishing, Open) != Open)
        {
            return false;
        }
        _results = results;
        _writes = writes;
        _trap = trap;
        Volatile.Write(ref _finished, Done);
        _completion.TrySetResult();
        return true;
    }

    internal void Attach(NativeStore? store, nint caller, WasmtimeVal* results, WasmValueKind[] kinds, nint* trapSlot)
    {
        if (Interlocked.Exchange(ref _attached, 1) != 0)
        {
            throw new InvalidOperationException("A HostCall serves one guest call; return a new one each time.");
        }
        _store = store;
        _caller = caller;
        _resultSlots = results;
        _resultKinds = kinds;
        _trapSlot = trapSlot;
        if (store is not null && !IsCompleted)
        {
            store.ParkedOn = this;
        }
    }

    /// <summary>Called by the continuation once <see cref="IsCompleted"/>: hands results, writes or the trap to the guest.</summary>
    internal void Deliver()
    {
        if (_store is { } store && ReferenceEquals(store.ParkedOn, this))
        {
            store.ParkedOn = null;
        }
        var trap = _trap;
        if (trap is null && _results.Length != _resultKinds.Length)
        {
            trap = $"host call completed with {_results.Length} results; the function declares {_resultKinds.Length}";
        }
        if (trap is null && !GuestMemory.TryWrite(_caller, _writes))
        {
            trap = "host call wrote outside the guest's memory";
        }
        if (trap is not null)
        {
            *_trapSlot = HostCallbacks.NewTrap(trap);
            return;
        }
        for (var i = 0; i < _resultKinds.Length; i++)
        {
            if (_resultKinds[i] == WasmValueKind.I64)
            {
                _resultSlots[i].Kind = WasmtimeVal.KindI64;
                _resultSlots[i].I64 = _results[i];
            }
            else
            {
                _resultSlots[i].Kind = WasmtimeVal.KindI32;
                _resultSlots[i].I32 = unchecked((int)_results[i]);
            }
        }
    }
}

internal sealed record HostFunctionDefinition(AsyncHostFunction Function, WasmValueKind[] Results);

internal static unsafe class GuestMemory
{
    private static ReadOnlySpan<byte> MemoryName => "memory"u8;

    public static bool TryGet(nint caller, out byte* data, out ulong size)
    {
        WasmtimeExtern export = default;
        data = null;
        size = 0;
        fixed (byte* name = MemoryName)
        {
            if (!NativeMethods.wasmtime_caller_export_get(caller, name, (nuint)MemoryName.Length, &export) || export.Kind != WasmtimeExtern.KindMemory)
            {
                return false;
            }
        }
        var context = NativeMethods.wasmtime_caller_context(caller);
        data = NativeMethods.wasmtime_memory_data(context, &export.Memory);
        size = NativeMethods.wasmtime_memory_data_size(context, &export.Memory);
        return true;
    }

    public static bool TryWrite(nint caller, IReadOnlyList<GuestMemoryWrite> writes)
    {
        if (writes.Count == 0)
        {
            return true;
        }
        if (!TryGet(caller, out var data, out var size))
        {
            return false;
        }
        foreach (var write in writes)
        {
            if ((ulong)write.Offset + (ulong)write.Bytes.Length > size)
            {
                return false;
            }
        }
        foreach (var write in writes)
        {
            write.Bytes.CopyTo(new Span<byte>(data + write.Offset, write.Bytes.Length));
        }
        return true;
    }
}

/// <summary>
/// The native entry points Wasmtime calls. They run on the guest's Wasmtime stack, inside a poll, on the
/// polling thread; no exception may leave them (it would cross native frames), so every failure becomes a
/// trap for the guest.
/// </summary>
internal static unsafe class HostCallbacks
{
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static void Invoke(nint env, nint caller, WasmtimeVal* args, nuint nargs, WasmtimeVal* results, nuint nresults,
        nint* trapSlot, WasmtimeAsyncContinuation* continuation)
    {
        try
        {
            var definition = (HostFunctionDefinition)GCHandle.FromIntPtr(env).Target!;
            var call = definition.Function(new HostCallContext(args, checked((int)nargs), caller));
            var store = NativeStore.FromContext(NativeMethods.wasmtime_caller_context(caller));
            call.Attach(store, caller, results, definition.Results, trapSlot);
            continuation->Callback = &Poll;
            continuation->Env = GCHandle.ToIntPtr(GCHandle.Alloc(call));
            continuation->Finalizer = &FreeHandle;
        }
#pragma warning disable CA1031 // An exception must not unwind into Wasmtime's frames: it becomes the guest's trap.
        catch (Exception e)
#pragma warning restore CA1031
        {
            *trapSlot = NewTrap($"host function failed: {e.GetType().Name}: {e.Message}");
            continuation->Callback = &Ready;
            continuation->Env = IntPtr.Zero;
            continuation->Finalizer = null;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static byte Poll(nint env)
    {
        try
        {
            var call = (HostCall)GCHandle.FromIntPtr(env).Target!;
            if (!call.IsCompleted)
            {
                return 0;
            }
            call.Deliver();
            return 1;
        }
#pragma warning disable CA1031 // See Invoke: nothing may unwind into Wasmtime. Ending the wait is the only safe answer.
        catch (Exception)
#pragma warning restore CA1031
        {
            return 1;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static byte Ready(nint env) => 1;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static void FreeHandle(nint env)
    {
        if (env != IntPtr.Zero)
        {
            GCHandle.FromIntPtr(env).Free();
        }
    }

    public static nint NewTrap(string message)
    {
        var utf8 = System.Text.Encoding.UTF8.GetBytes(message);
        fixed (byte* m = utf8)
        {
            return NativeMethods.wasmtime_trap_new(m, (nuint)utf8.Length);
        }
    }
}
