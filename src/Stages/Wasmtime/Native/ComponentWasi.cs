using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Krustlet.Stages.Wasmtime.Native;

/// <summary>Receives a guest's output; must take all of it (throwing makes the guest's write fail with EIO).</summary>
public delegate void WasiOutputSink(ReadOnlySpan<byte> data);

/// <summary>A component's WASI context: what <see cref="NativeWasiOptions"/> gives a core module, output to callbacks, and the network.</summary>
public sealed record ComponentWasiOptions
{
    public IReadOnlyList<string> Args { get; init; } = [];
    public IReadOnlyList<KeyValuePair<string, string>> Environment { get; init; } = [];
    public IReadOnlyList<NativePreopen> Preopens { get; init; } = [];

    /// <summary>Where stdout goes; null discards it.</summary>
    public WasiOutputSink? Stdout { get; init; }

    /// <summary>Where stderr goes; null discards it.</summary>
    public WasiOutputSink? Stderr { get; init; }

    /// <summary>
    /// Outbound network (<see cref="OutboundNetwork"/>): every address passes WASI's address check
    /// (<c>wasi_config_inherit_network</c>) and <c>ip-name-lookup</c> resolves names
    /// (<c>wasi_config_allow_ip_name_lookup</c>). Off, every address and lookup is refused.
    /// </summary>
    public bool OutboundNetwork { get; init; }
}

/// <summary>
/// Builds a component's WASI context (<c>wasi_config_t</c>) with the C API and gives it to a
/// Wasmtime.Dotnet <see cref="global::Wasmtime.Store"/>, because Wasmtime.Dotnet's
/// <see cref="global::Wasmtime.WasiConfiguration"/> has no network options. For components the C API
/// takes WASI 0.2's context from the same <c>wasi_config_t</c> as preview 1's (the store data's
/// <c>WasiP1Ctx</c>, whose <c>WasiView</c> serves <c>wasmtime_component_linker_add_wasip2</c>), so this
/// replaces <c>Store.SetWasiConfiguration</c> entirely. Wasmtime.Dotnet and this layer load the same
/// <c>libwasmtime</c>, so the store's context pointer (its private <c>contextHandle</c>, read with an
/// <see cref="UnsafeAccessorAttribute"/>; a Wasmtime.Dotnet without it fails with
/// <see cref="MissingFieldException"/> at the first component run, and in the tests) is valid here.
/// Output callbacks run on the thread that runs the component (never a fiber: the component path is
/// synchronous), so managed code there is safe, as in Wasmtime.Dotnet's own callbacks.
/// </summary>
public static class ComponentWasi
{
    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "contextHandle")]
    private static extern ref nint ContextHandle(global::Wasmtime.Store store);

    /// <summary>Gives <paramref name="store"/> its WASI context; call before instantiating a component in it.</summary>
    public static unsafe void Set(global::Wasmtime.Store store, ComponentWasiOptions options)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        var context = ContextHandle(store);
        ObjectDisposedException.ThrowIf(context == IntPtr.Zero, store);

        using var wasi = new WasiConfigHandle(NativeMethods.wasi_config_new());
        var w = wasi.DangerousGetHandle();
        WasiConfigParts.SetCommandLine(w, options.Args, options.Environment);

        WasiConfigParts.Preopen(w, options.Preopens);

        // Each sink is held by a GCHandle that the context frees (the finalizer) when the store goes.
        delegate* unmanaged<nint, byte*, nuint, nint> write = &Write;
        delegate* unmanaged<nint, void> free = &Free;
        if (options.Stdout is { } stdout)
        {
            NativeMethods.wasi_config_set_stdout_custom(w, (nint)write, GCHandle.ToIntPtr(GCHandle.Alloc(stdout)), (nint)free);
        }

        if (options.Stderr is { } stderr)
        {
            NativeMethods.wasi_config_set_stderr_custom(w, (nint)write, GCHandle.ToIntPtr(GCHandle.Alloc(stderr)), (nint)free);
        }

        if (options.OutboundNetwork)
        {
            NativeMethods.wasi_config_inherit_network(w);
            NativeMethods.wasi_config_allow_ip_name_lookup(w, true);
        }

        // The context takes the WASI config even when it returns an error.
        WasmtimeNativeException.ThrowIfError(NativeMethods.wasmtime_context_set_wasi(context, wasi.Surrender()));
        GC.KeepAlive(store);

    }

    private const int Eio = 5;

    [UnmanagedCallersOnly]
    private static unsafe nint Write(nint data, byte* bytes, nuint length)
    {
        try
        {
            ((WasiOutputSink)GCHandle.FromIntPtr(data).Target!)(new ReadOnlySpan<byte>(bytes, checked((int)length)));
            return (nint)length;
        }
        catch (Exception)
        {
            return -Eio; // the guest's write fails; nothing may unwind into Wasmtime
        }
    }

    [UnmanagedCallersOnly]
    private static void Free(nint data) => GCHandle.FromIntPtr(data).Free();

}
