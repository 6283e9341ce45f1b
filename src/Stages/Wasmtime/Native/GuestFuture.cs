using System.Runtime.InteropServices;

namespace Krustlet.Stages.Wasmtime.Native;

/// <summary>
/// A guest instantiation or call in flight (wasmtime_call_future_t). <see cref="Poll"/> runs the guest on
/// its own stack until it finishes or yields: at an epoch deadline set up with
/// <see cref="NativeStore.YieldAtEpochDeadline"/>, at a fuel interval, or in an async host function
/// (then <see cref="ParkedOn"/> says which call it waits for). Between polls the guest holds no thread;
/// any thread may poll next, one at a time. Disposing deletes the future, ending a guest that has not
/// finished, and frees the store for other use.
/// </summary>
public sealed unsafe class GuestFuture : IDisposable
{
    private readonly NativeStore _store;
    private readonly CallFutureHandle _handle;
    private readonly FutureBlock* _block;
    private readonly int _argCount;
    private readonly int _resultCount;
    private readonly bool _instantiation;
    private int _polling;
    private bool _completed;
    private bool _disposed;

    [StructLayout(LayoutKind.Sequential)]
    internal struct FutureBlock
    {
        /// <summary>The function to call, or the instance an instantiation writes.</summary>
        public WasmtimeStoreItem Item;
        public nint Trap;
        public nint Error;
        public nint Padding;
    }

    internal delegate nint Starter(FutureBlock* block, WasmtimeVal* vals, nuint args, nuint results);

    private GuestFuture(NativeStore store, CallFutureHandle handle, FutureBlock* block, int args, int results, bool instantiation)
    {
        _store = store;
        _handle = handle;
        _block = block;
        _argCount = args;
        _resultCount = results;
        _instantiation = instantiation;
    }

    /// <summary>
    /// Starts a future whose block (item, trap and error slots, then the values) and borrowed handles stay
    /// alive until the future is deleted, as async.h requires.
    /// </summary>
    internal static GuestFuture Start(NativeStore store, ReadOnlySpan<long> args, int results, Starter start,
        WasmtimeStoreItem item = default, NativeHandle? alsoBorrow = null, bool instantiation = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(results);
        store.Enter();
        var borrowed = new List<NativeHandle>(2);
        FutureBlock* block = null;
        try
        {
            foreach (var h in alsoBorrow is null ? [store.Handle] : new NativeHandle[] { store.Handle, alsoBorrow })
            {
                var added = false;
                h.DangerousAddRef(ref added);
                borrowed.Add(h);
            }
            var size = (nuint)sizeof(FutureBlock) + (nuint)((args.Length + results) * sizeof(WasmtimeVal));
            block = (FutureBlock*)NativeMemory.AllocZeroed(size);
            block->Item = item;
            var vals = (WasmtimeVal*)(block + 1);
            for (var i = 0; i < args.Length; i++)
            {
                vals[i].Kind = WasmtimeVal.KindI32;
                vals[i].I32 = checked((int)args[i]);
            }
            var future = start(block, vals, (nuint)args.Length, (nuint)results);
            var handle = new CallFutureHandle(future, block, [.. borrowed]);
            return new GuestFuture(store, handle, block, args.Length, results, instantiation);
        }
        catch
        {
            NativeMemory.Free(block);
            foreach (var h in borrowed)
            {
                h.DangerousRelease();
            }
            store.Leave();
            throw;
        }
    }

    /// <summary>The host call the guest is parked on after a poll returned false, or null (an epoch or fuel yield).</summary>
    public HostCall? ParkedOn => _store.ParkedOn;

    /// <summary>Whether a poll has returned true.</summary>
    public bool IsCompleted => _completed;

    /// <summary>
    /// Runs the guest until it finishes (true) or yields (false). When it finished by trapping or with
    /// an error, throws <see cref="WasmTrapException"/>, <see cref="GuestExitException"/> (WASI exit) or
    /// <see cref="WasmtimeNativeException"/>. Not to be called again after it returned true or threw.
    /// </summary>
    public bool Poll()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed)
        {
            throw new InvalidOperationException("The guest future has already completed.");
        }
        if (Interlocked.Exchange(ref _polling, 1) != 0)
        {
            throw new InvalidOperationException("The guest future is being polled by another thread.");
        }
        try
        {
            _store.ParkedOn = null;
            if (!NativeMethods.wasmtime_call_future_poll(_handle.DangerousGetHandle()))
            {
                return false;
            }
            _completed = true;
            var trap = Interlocked.Exchange(ref _block->Trap, 0);
            var error = Interlocked.Exchange(ref _block->Error, 0);
            if (trap != IntPtr.Zero)
            {
                if (error != IntPtr.Zero)
                {
                    NativeMethods.wasmtime_error_delete(error);
                }
                throw WasmTrapException.FromTrap(trap);
            }
            WasmtimeNativeException.ThrowIfError(error);
            return true;
        }
        finally
        {
            Volatile.Write(ref _polling, 0);
        }
    }

    /// <summary>The instance an instantiation created, once it completed.</summary>
    public NativeInstance Instance => _completed && _instantiation
        ? new NativeInstance(_store, _block->Item)
        : throw new InvalidOperationException("Only a completed instantiation has an instance.");

    /// <summary>The call's results (i32 or i64 widened to long), once it completed.</summary>
    public long[] Results
    {
        get
        {
            if (!_completed || _instantiation)
            {
                throw new InvalidOperationException("Only a completed call has results.");
            }
            var vals = (WasmtimeVal*)(_block + 1) + _argCount;
            var results = new long[_resultCount];
            for (var i = 0; i < results.Length; i++)
            {
                results[i] = vals[i].Kind == WasmtimeVal.KindI64 ? vals[i].I64 : vals[i].I32;
            }
            return results;
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        if (Volatile.Read(ref _polling) != 0)
        {
            throw new InvalidOperationException("The guest future is being polled; dispose it after the poll returns.");
        }
        _disposed = true;
        _handle.Dispose();
        _store.ParkedOn = null;
        _store.Leave();
    }
}
