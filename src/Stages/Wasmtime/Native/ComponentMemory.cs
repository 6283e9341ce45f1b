using System.Reflection;
using System.Runtime.InteropServices;

namespace Krustlet.Stages.Wasmtime.Native;

/// <summary>
/// Counts a component's linear memories, which the C API gives no way to reach. The component engine's
/// <see cref="global::Wasmtime.Config"/> gets the shim's host memory creator (<see cref="InstallOn"/>),
/// so Wasmtime makes every linear memory of that engine through it; a run opens a
/// <see cref="ComponentMemoryUsage"/> on its thread before it instantiates, and the memories created
/// there add their size to it, grow it and take it back when they end, read at any time with
/// <see cref="ComponentMemoryUsage.Bytes"/>. Wasmtime.Dotnet's <c>Config</c> keeps its
/// <c>wasm_config_t</c> in a private field (read once by reflection; a Wasmtime.Dotnet without it fails
/// with <see cref="MissingFieldException"/> when the engine is made, and in the tests).
/// </summary>
public static class ComponentMemory
{
    [StructLayout(LayoutKind.Sequential)]
    private struct MemoryCreator
    {
        public nint Env;
        public nint NewMemory;
        public nint Finalizer;
    }

    private static readonly FieldInfo? ConfigHandleField =
        typeof(global::Wasmtime.Config).GetField("handle", BindingFlags.NonPublic | BindingFlags.Instance);

    /// <summary>Makes every linear memory of the engine built from <paramref name="config"/> through the shim.</summary>
    public static unsafe void InstallOn(global::Wasmtime.Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var handle = ConfigHandleField?.GetValue(config) as SafeHandle
            ?? throw new MissingFieldException("Wasmtime.Config", "handle");
        ObjectDisposedException.ThrowIf(handle.IsInvalid || handle.IsClosed, config);

        var creator = new MemoryCreator { Env = IntPtr.Zero, NewMemory = NativeShim.Functions.NewMemory, Finalizer = IntPtr.Zero };
        NativeMethods.wasmtime_config_host_memory_creator_set(handle.DangerousGetHandle(), &creator); // copied by Wasmtime
    }
}

/// <summary>
/// The bytes of the linear memories one component run has made (the shim's <c>kr_usage</c>). Open it on
/// the run's thread with <see cref="Enter"/> before instantiating; the count stays right after
/// <see cref="Leave"/> and after this handle is disposed, until the last memory ends.
/// </summary>
public sealed class ComponentMemoryUsage : SafeHandle
{
    public ComponentMemoryUsage() : base(IntPtr.Zero, ownsHandle: true)
    {
        SetHandle(NativeShim.kr_usage_new());
        if (IsInvalid)
        {
            throw new WasmtimeNativeException("the executor shim could not allocate a memory usage counter");
        }
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>The live memories' sizes in bytes, as of now.</summary>
    public long Bytes
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsClosed, this);
            return checked((long)NativeShim.kr_usage_bytes(handle));
        }
    }

    /// <summary>Memories created on the calling thread from now on count here, until <see cref="Leave"/>.</summary>
    public void Enter()
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        NativeShim.kr_usage_enter(handle);
    }

    /// <summary>Memories created on the calling thread count nowhere again.</summary>
    public static void Leave() => NativeShim.kr_usage_enter(IntPtr.Zero);

    protected override bool ReleaseHandle()
    {
        NativeShim.kr_usage_release(handle);
        return true;
    }
}
