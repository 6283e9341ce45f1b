using System.Runtime.InteropServices;

namespace Krustlet.Stages.Wasmtime.Native;

/// <summary>Value types a host function takes or returns.</summary>
public enum WasmValueKind : byte
{
    I32 = 0,
    I64 = 1,
}

/// <summary>
/// Import definitions (wasmtime_linker_t): WASI preview 1 and async host functions. Define everything,
/// then <see cref="Prepare"/> each module once; the linker is not used by guests after that.
/// </summary>
public sealed class NativeLinker : IDisposable
{
    internal LinkerHandle Handle { get; }

    public NativeLinker(NativeEngine engine)
    {
        ArgumentNullException.ThrowIfNull(engine);
        Handle = new LinkerHandle(NativeMethods.wasmtime_linker_new(engine.Handle));
    }

    /// <summary>Lets a later definition replace an earlier one of the same name (e.g. a WASI function).</summary>
    public void AllowShadowing(bool allow) => NativeMethods.wasmtime_linker_allow_shadowing(Handle, allow);

    /// <summary>Defines wasi_snapshot_preview1 (and wasi_unstable); a store must get <see cref="NativeStore.SetWasi"/>.</summary>
    public void DefineWasi() => WasmtimeNativeException.ThrowIfError(NativeMethods.wasmtime_linker_define_wasi(Handle));

    /// <summary>
    /// Defines <paramref name="module"/>.<paramref name="name"/> as an async host function: when the guest calls
    /// it, <paramref name="function"/> returns a <see cref="HostCall"/>; until that call completes, every poll
    /// of the guest's future returns false at once and the guest holds no thread.
    /// </summary>
    public unsafe void DefineAsync(string module, string name, IReadOnlyList<WasmValueKind> parameters,
        IReadOnlyList<WasmValueKind> results, AsyncHostFunction function)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(results);
        ArgumentNullException.ThrowIfNull(function);
        var functype = NewFunctype(parameters, results);
        try
        {
            var moduleUtf8 = System.Text.Encoding.UTF8.GetBytes(module);
            var nameUtf8 = System.Text.Encoding.UTF8.GetBytes(name);
            // From here the linker owns the handle: the finalizer frees it when the definition is dropped,
            // and also when defining fails (Wasmtime drops the closure holding it).
            var data = GCHandle.ToIntPtr(GCHandle.Alloc(new HostFunctionDefinition(function, [.. results])));
            fixed (byte* m = moduleUtf8)
            fixed (byte* n = nameUtf8)
            {
                WasmtimeNativeException.ThrowIfError(NativeMethods.wasmtime_linker_define_async_func(
                    Handle, m, (nuint)moduleUtf8.Length, n, (nuint)nameUtf8.Length, functype,
                    &HostCallbacks.Invoke, data, &HostCallbacks.FreeHandle));
            }
        }
        finally
        {
            NativeMethods.wasm_functype_delete(functype);
        }
    }

    /// <summary>
    /// Defines WASI preview 1 with <c>poll_oneoff</c> and <c>sched_yield</c> replaced by the executor
    /// shim's async versions: a guest that sleeps on a clock or yields parks (its poll returns false and
    /// its <see cref="NativeStore.Mailbox"/> says why) instead of blocking the polling thread. No .NET code
    /// runs on the guest's stack.
    /// </summary>
    public void DefineParkingWasi()
    {
        var shim = NativeShim.Functions;
        DefineWasi();
        AllowShadowing(true);
        WasmValueKind[] i32 = [WasmValueKind.I32];
        foreach (var module in (string[])["wasi_snapshot_preview1", "wasi_unstable"])
        {
            DefineNative(module, "poll_oneoff", [WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32], i32, shim.PollOneoff, shim.NoopFinalizer);
            DefineNative(module, "sched_yield", [], i32, shim.SchedYield, shim.NoopFinalizer);
        }
        AllowShadowing(false);
    }

    private unsafe void DefineNative(string module, string name, IReadOnlyList<WasmValueKind> parameters,
        IReadOnlyList<WasmValueKind> results, nint callback, nint finalizer)
    {
        var functype = NewFunctype(parameters, results);
        try
        {
            var moduleUtf8 = System.Text.Encoding.UTF8.GetBytes(module);
            var nameUtf8 = System.Text.Encoding.UTF8.GetBytes(name);
            fixed (byte* m = moduleUtf8)
            fixed (byte* n = nameUtf8)
            {
                WasmtimeNativeException.ThrowIfError(NativeMethods.wasmtime_linker_define_async_func(
                    Handle, m, (nuint)moduleUtf8.Length, n, (nuint)nameUtf8.Length, functype, callback, IntPtr.Zero, finalizer));
            }
        }
        finally
        {
            NativeMethods.wasm_functype_delete(functype);
        }
    }

    /// <summary>Resolves <paramref name="module"/>'s imports once (wasmtime_linker_instantiate_pre).</summary>
    public unsafe NativeInstancePre Prepare(NativeModule module)
    {
        ArgumentNullException.ThrowIfNull(module);
        nint pre = 0;
        WasmtimeNativeException.ThrowIfError(NativeMethods.wasmtime_linker_instantiate_pre(Handle, module.Handle, &pre));
        return new NativeInstancePre(new InstancePreHandle(pre));
    }

    private static unsafe nint NewFunctype(IReadOnlyList<WasmValueKind> parameters, IReadOnlyList<WasmValueKind> results)
    {
        WasmValtypeVec p = default, r = default;
        Vec(parameters, &p);
        Vec(results, &r);
        return NativeMethods.wasm_functype_new(&p, &r); // takes both vectors' contents

        static void Vec(IReadOnlyList<WasmValueKind> kinds, WasmValtypeVec* vec)
        {
            if (kinds.Count == 0)
            {
                NativeMethods.wasm_valtype_vec_new_empty(vec);
                return;
            }
            var types = stackalloc nint[kinds.Count];
            for (var i = 0; i < kinds.Count; i++)
            {
                types[i] = NativeMethods.wasm_valtype_new((byte)kinds[i]);
            }
            NativeMethods.wasm_valtype_vec_new(vec, (nuint)kinds.Count, types); // takes the valtypes
        }
    }

    public void Dispose() => Handle.Dispose();
}
