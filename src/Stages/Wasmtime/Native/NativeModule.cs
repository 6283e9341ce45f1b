namespace Krustlet.Stages.Wasmtime.Native;

/// <summary>A compiled core module (wasmtime_module_t). Immutable and thread-safe; shareable by every store of its engine.</summary>
public sealed class NativeModule : IDisposable
{
    internal ModuleHandle Handle { get; }

    private NativeModule(ModuleHandle handle) => Handle = handle;

    /// <summary>Compiles a wasm binary.</summary>
    public static unsafe NativeModule Compile(NativeEngine engine, ReadOnlySpan<byte> wasm)
    {
        ArgumentNullException.ThrowIfNull(engine);
        nint module = 0;
        fixed (byte* bytes = wasm)
        {
            WasmtimeNativeException.ThrowIfError(NativeMethods.wasmtime_module_new(engine.Handle, bytes, (nuint)wasm.Length, &module));
        }
        return new NativeModule(new ModuleHandle(module));
    }

    /// <summary>Loads an artifact made by <see cref="Serialize"/> with an engine of the same configuration.</summary>
    public static unsafe NativeModule Deserialize(NativeEngine engine, ReadOnlySpan<byte> artifact)
    {
        ArgumentNullException.ThrowIfNull(engine);
        nint module = 0;
        fixed (byte* bytes = artifact)
        {
            WasmtimeNativeException.ThrowIfError(NativeMethods.wasmtime_module_deserialize(engine.Handle, bytes, (nuint)artifact.Length, &module));
        }
        return new NativeModule(new ModuleHandle(module));
    }

    /// <summary>The compiled artifact, for a compile cache.</summary>
    public unsafe byte[] Serialize()
    {
        WasmByteVec bytes = default;
        WasmtimeNativeException.ThrowIfError(NativeMethods.wasmtime_module_serialize(Handle, &bytes));
        try
        {
            return new ReadOnlySpan<byte>(bytes.Data, checked((int)bytes.Size)).ToArray();
        }
        finally
        {
            NativeMethods.wasm_byte_vec_delete(&bytes);
        }
    }

    public void Dispose() => Handle.Dispose();
}
