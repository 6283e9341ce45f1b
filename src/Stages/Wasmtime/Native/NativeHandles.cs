using System.Runtime.InteropServices;

namespace Krustlet.Stages.Wasmtime.Native;

/// <summary>An owned native pointer deleted exactly once, by whoever releases the handle last.</summary>
internal abstract class NativeHandle : SafeHandle
{
    protected NativeHandle(nint pointer) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(pointer);

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>
    /// Hands the pointer to a native call that takes ownership of it: the handle no longer deletes it.
    /// </summary>
    public nint Surrender()
    {
        var pointer = handle;
        SetHandleAsInvalid();
        return pointer;
    }

    /// <summary>Keeps the pointer alive until the lease is disposed (SafeHandle reference counting).</summary>
    public Lease Borrow()
    {
        var added = false;
        DangerousAddRef(ref added);
        return new Lease(this);
    }

    public readonly struct Lease(NativeHandle owner) : IDisposable
    {
        public void Dispose() => owner.DangerousRelease();
    }
}

internal sealed class ConfigHandle(nint pointer) : NativeHandle(pointer)
{
    protected override bool ReleaseHandle()
    {
        NativeMethods.wasm_config_delete(handle);
        return true;
    }
}

internal sealed class PoolingConfigHandle(nint pointer) : NativeHandle(pointer)
{
    protected override bool ReleaseHandle()
    {
        NativeMethods.wasmtime_pooling_allocation_config_delete(handle);
        return true;
    }
}

internal sealed class EngineHandle : NativeHandle
{
    public EngineHandle() : base(IntPtr.Zero) { }

    public EngineHandle(nint pointer) : base(pointer) { }

    protected override bool ReleaseHandle()
    {
        NativeMethods.wasm_engine_delete(handle);
        return true;
    }
}

internal sealed class ModuleHandle : NativeHandle
{
    public ModuleHandle() : base(IntPtr.Zero) { }

    public ModuleHandle(nint pointer) : base(pointer) { }

    protected override bool ReleaseHandle()
    {
        NativeMethods.wasmtime_module_delete(handle);
        return true;
    }
}

internal sealed class StoreHandle : NativeHandle
{
    private readonly GuestMailbox? _mailbox;

    public StoreHandle() : base(IntPtr.Zero) { }

    /// <param name="pointer">The store.</param>
    /// <param name="mailbox">The store's data, freed right after the store (nothing of the store can reach it then).</param>
    public StoreHandle(nint pointer, GuestMailbox? mailbox = null) : base(pointer) => _mailbox = mailbox;

    protected override bool ReleaseHandle()
    {
        NativeMethods.wasmtime_store_delete(handle);
        _mailbox?.Dispose();
        return true;
    }
}

internal sealed class LinkerHandle : NativeHandle
{
    public LinkerHandle() : base(IntPtr.Zero) { }

    public LinkerHandle(nint pointer) : base(pointer) { }

    protected override bool ReleaseHandle()
    {
        NativeMethods.wasmtime_linker_delete(handle);
        return true;
    }
}

internal sealed class InstancePreHandle(nint pointer) : NativeHandle(pointer)
{
    protected override bool ReleaseHandle()
    {
        NativeMethods.wasmtime_instance_pre_delete(handle);
        return true;
    }
}

internal sealed class WasiConfigHandle(nint pointer) : NativeHandle(pointer)
{
    protected override bool ReleaseHandle()
    {
        NativeMethods.wasi_config_delete(handle);
        return true;
    }
}

internal sealed class ErrorHandle(nint pointer) : NativeHandle(pointer)
{
    protected override bool ReleaseHandle()
    {
        NativeMethods.wasmtime_error_delete(handle);
        return true;
    }
}

internal sealed class TrapHandle(nint pointer) : NativeHandle(pointer)
{
    protected override bool ReleaseHandle()
    {
        NativeMethods.wasm_trap_delete(handle);
        return true;
    }
}

/// <summary>
/// A call future and the native block its call reads and writes (function or instance, trap and error
/// slots, arguments and results). Wasmtime requires all of them to stay put until the future is deleted,
/// so they live and die together: the future is deleted first, then the block is freed, then the store the
/// future runs in is released (it was kept alive for exactly this long).
/// </summary>
internal sealed unsafe class CallFutureHandle : NativeHandle
{
    private readonly void* _block;
    private readonly NativeHandle[] _borrowed;

    /// <summary>Takes the block and one reference on each of <paramref name="borrowed"/> (already added by the caller).</summary>
    public CallFutureHandle(nint future, void* block, NativeHandle[] borrowed) : base(future)
    {
        _block = block;
        _borrowed = borrowed;
    }

    protected override bool ReleaseHandle()
    {
        NativeMethods.wasmtime_call_future_delete(handle);
        NativeMemory.Free(_block);
        foreach (var borrowed in _borrowed)
        {
            borrowed.DangerousRelease();
        }
        return true;
    }
}
