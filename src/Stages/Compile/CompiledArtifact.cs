using Wasmtime;
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
    private CompiledArtifact(string digest, WasmBinaryKind kind, Module? module, Component? component, CompileSource source)
    {
        Digest = digest;
        Kind = kind;
        Module = module;
        Component = component;
        Source = source;
    }

    public string Digest { get; }

    public WasmBinaryKind Kind { get; }

    /// <summary>Set for a core module.</summary>
    public Module? Module { get; }

    /// <summary>Set for a component.</summary>
    public Component? Component { get; }

    public CompileSource Source { get; }

    internal static CompiledArtifact ForModule(string digest, Module module, CompileSource source) =>
        new(digest, WasmBinaryKind.CoreModule, module, null, source);

    internal static CompiledArtifact ForComponent(string digest, Component component, CompileSource source) =>
        new(digest, WasmBinaryKind.Component, null, component, source);
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
