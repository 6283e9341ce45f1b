using Krustlet.Stages.Wasmtime.Native;
using Wasmtime.Components;

namespace Krustlet.Stages.Compile;

/// <summary>Where a compiled artifact came from, for metrics and tests.</summary>
public enum CompileSource
{
    /// <summary>Compiled from the module bytes now.</summary>
    Compiled,

    /// <summary>Loaded from the on-disk cache (no compilation).</summary>
    DiskCache,
}

/// <summary>A module or component compiled for the shared engine, ready to instantiate. Shared by every pod using the digest.</summary>
public sealed class CompiledArtifact
{
    private CompiledArtifact(string digest, WasmBinaryKind kind, NativeModule? module, NativeInstancePre? instancePre, string? prepareError, Component? component, CompileSource source, long tableBytes)
    {
        TableBytes = tableBytes;
        Digest = digest;
        Kind = kind;
        Module = module;
        InstancePre = instancePre;
        PrepareError = prepareError;
        Component = component;
        Source = source;
    }

    public string Digest { get; }

    public WasmBinaryKind Kind { get; }

    /// <summary>Set for a core module: compiled for the executor's engine (<see cref="WasmEngineHost.Native"/>).</summary>
    public NativeModule? Module { get; }

    /// <summary>
    /// A core module with its imports resolved against the executor's WASI linker: every run instantiates
    /// from it into a fresh pooled store (the fast path). Null when the imports cannot be resolved
    /// (<see cref="PrepareError"/> says why; each run then fails to start with that reason, as a kubelet
    /// reports a container that cannot start).
    /// </summary>
    public NativeInstancePre? InstancePre { get; }

    /// <summary>Why <see cref="InstancePre"/> could not be made (an unknown import, a wrong type).</summary>
    public string? PrepareError { get; }

    /// <summary>Set for a component.</summary>
    public Component? Component { get; }

    public CompileSource Source { get; }

    /// <summary>The bytes of the tables the binary defines, as declared (<see cref="WasmTables"/>): part of a container's memory figure.</summary>
    public long TableBytes { get; }

    /// <summary>A core module, with its InstancePre made against <paramref name="host"/>'s executor linker.</summary>
    internal static CompiledArtifact ForModule(string digest, NativeModule module, WasmEngineHost host, CompileSource source, long tableBytes = 0)
    {
        try
        {
            return new(digest, WasmBinaryKind.CoreModule, module, host.Native.Linker.Prepare(module), null, null, source, tableBytes);
        }
        catch (WasmtimeNativeException ex)
        {
            return new(digest, WasmBinaryKind.CoreModule, module, null, ex.Message.Split('\n', 2)[0].Trim(), null, source, tableBytes);
        }
    }

    internal static CompiledArtifact ForComponent(string digest, Component component, CompileSource source, long tableBytes = 0) =>
        new(digest, WasmBinaryKind.Component, null, null, null, component, source, tableBytes);
}

/// <summary>The module bytes could not be compiled: not WebAssembly, invalid, or not matching their digest.</summary>
public sealed class CompileException : Exception
{
    public CompileException(string message)
        : base(message)
    {
    }

    public CompileException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public CompileException()
    {
    }
}
