namespace Krustlet.Stages.Wasmtime.Native;

/// <summary>An instance inside a store (wasmtime_instance_t: a value, valid as long as its store).</summary>
public sealed class NativeInstance
{
    internal NativeInstance(NativeStore store, WasmtimeStoreItem item)
    {
        Store = store;
        Item = item;
    }

    internal NativeStore Store { get; }

    internal WasmtimeStoreItem Item { get; }

    /// <summary>The exported function <paramref name="name"/>, or null if there is no such function export.</summary>
    public NativeFunction? GetFunction(string name) =>
        TryExport(name, WasmtimeExtern.KindFunc, out var export) ? new NativeFunction(Store, export.Func) : null;

    /// <summary>The bytes of the exported memory <paramref name="name"/> now, or null if there is no such memory export. Not during a poll.</summary>
    public unsafe ulong? MemorySize(string name)
    {
        if (!TryExport(name, WasmtimeExtern.KindMemory, out var export))
        {
            return null;
        }

        using var store = Store.Handle.Borrow();
        return NativeMethods.wasmtime_memory_data_size(Store.RawContext, &export.Memory);
    }

    private unsafe bool TryExport(string name, byte kind, out WasmtimeExtern export)
    {
        ArgumentNullException.ThrowIfNull(name);
        var utf8 = System.Text.Encoding.UTF8.GetBytes(name);
        var item = Item;
        WasmtimeExtern found = default;
        Store.EnsureIdle();
        using var store = Store.Handle.Borrow();
        fixed (byte* n = utf8)
        {
            var ok = NativeMethods.wasmtime_instance_export_get(Store.RawContext, &item, n, (nuint)utf8.Length, &found) && found.Kind == kind;
            export = found;
            return ok;
        }
    }
}

/// <summary>A function of a store (wasmtime_func_t); call it with <see cref="NativeStore.CallAsync"/>.</summary>
public sealed class NativeFunction
{
    internal NativeFunction(NativeStore store, WasmtimeStoreItem item)
    {
        Store = store;
        Item = item;
    }

    internal NativeStore Store { get; }

    internal WasmtimeStoreItem Item { get; }
}

/// <summary>
/// A module with its imports already resolved against a linker (wasmtime_instance_pre_t): type checks and
/// import lookup are done once, so instantiating it into a fresh store is the fast path. Thread-safe and
/// reusable for any number of stores of its engine.
/// </summary>
public sealed class NativeInstancePre : IDisposable
{
    private readonly InstancePreHandle _handle;

    internal NativeInstancePre(InstancePreHandle handle) => _handle = handle;

    /// <summary>Instantiates into <paramref name="store"/> (running the module's start function, if any) as a future.</summary>
    public unsafe GuestFuture InstantiateAsync(NativeStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        var context = store.RawContext;
        // Start holds a reference on the InstancePre before calling this, so its pointer stays valid.
        return GuestFuture.Start(store, [], 0, (block, _, _, _) =>
            NativeMethods.wasmtime_instance_pre_instantiate_async(_handle.DangerousGetHandle(), context, &block->Item, &block->Trap, &block->Error),
            alsoBorrow: _handle, instantiation: true);
    }

    public void Dispose() => _handle.Dispose();
}
