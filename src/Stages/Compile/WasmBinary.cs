namespace Krustlet.Stages.Compile;

/// <summary>What kind of WebAssembly binary a file holds, told from its first eight bytes.</summary>
public enum WasmBinaryKind
{
    /// <summary>Not a WebAssembly binary (no <c>\0asm</c> magic, or an unknown version).</summary>
    NotWasm,

    /// <summary>A core module (version 1): WASI preview 1, entry <c>_start</c>.</summary>
    CoreModule,

    /// <summary>A component (version 0x0d, layer 1): WASI 0.2, entry <c>wasi:cli/run</c>.</summary>
    Component,
}

public static class WasmBinary
{
    /// <summary>
    /// Core modules and components share the <c>\0asm</c> magic and differ in the next four bytes:
    /// <c>01 00 00 00</c> (version 1) for a module, <c>0d 00 01 00</c> (version 13, layer 1) for a component.
    /// </summary>
    public static WasmBinaryKind Detect(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 8 || !bytes[..4].SequenceEqual("\0asm"u8))
        {
            return WasmBinaryKind.NotWasm;
        }

        var header = bytes[4..8];
        if (header.SequenceEqual(new byte[] { 0x01, 0x00, 0x00, 0x00 }))
        {
            return WasmBinaryKind.CoreModule;
        }

        return header[2] == 0x01 && header[3] == 0x00 ? WasmBinaryKind.Component : WasmBinaryKind.NotWasm;
    }
}
