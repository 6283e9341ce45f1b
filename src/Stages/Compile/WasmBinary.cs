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

/// <summary>
/// The tables a binary defines, as declared: what their elements take when instantiated, for the
/// kubelet API's memory figures. Tables live outside linear memory and the C API cannot reach a table
/// that is not exported (clang and Rust do not export theirs), so a container's memory counts each
/// defined table at its declared initial size: exact for tables with a maximum equal to it (what clang
/// emits), the floor for one that grows with <c>table.grow</c>. Reads only section headers and table
/// sections; a component counts the tables of the core modules it contains (each once).
/// </summary>
public static class WasmTables
{
    private const int ModuleTableSection = 4;
    private const int ComponentCoreModuleSection = 1;
    private const int ComponentComponentSection = 4;
    private const int MaxNesting = 8;

    /// <summary>The defined tables' bytes in <paramref name="binary"/> (0 for anything it cannot read).</summary>
    public static long DeclaredBytes(ReadOnlySpan<byte> binary) => Binary(binary, 0);

    /// <summary>The same for a file; 0 when it cannot be read.</summary>
    public static long DeclaredBytes(string path)
    {
        try
        {
            return DeclaredBytes(File.ReadAllBytes(path));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    private static long Binary(ReadOnlySpan<byte> binary, int depth)
    {
        var kind = WasmBinary.Detect(binary);
        if (kind == WasmBinaryKind.NotWasm || depth > MaxNesting)
        {
            return 0;
        }

        long total = 0;
        var offset = 8;
        while (offset < binary.Length)
        {
            var id = binary[offset++];
            if (!TryLeb(binary, ref offset, out var size) || size > (ulong)(binary.Length - offset))
            {
                return total; // truncated: Wasmtime refused it already, or will
            }

            var body = binary.Slice(offset, (int)size);
            offset += (int)size;
            total += kind == WasmBinaryKind.CoreModule
                ? id == ModuleTableSection ? Tables(body) : 0
                : id is ComponentCoreModuleSection or ComponentComponentSection ? Binary(body, depth + 1) : 0;
        }

        return total;
    }

    // vec(tabletype): reftype limits, or 0x40 0x00 reftype limits expr (function references); an
    // encoding this reader does not know ends the count with what it has.
    private static long Tables(ReadOnlySpan<byte> section)
    {
        var offset = 0;
        if (!TryLeb(section, ref offset, out var count))
        {
            return 0;
        }

        long total = 0;
        for (ulong i = 0; i < count && offset < section.Length; i++)
        {
            var withInit = section[offset] == 0x40;
            if (withInit)
            {
                offset += 2;
            }

            if (!SkipRefType(section, ref offset) || offset >= section.Length)
            {
                return total;
            }

            var flags = section[offset++];
            if (!TryLeb(section, ref offset, out var minimum) || ((flags & 1) != 0 && !TryLeb(section, ref offset, out _)))
            {
                return total;
            }

            total = Saturating(total, minimum);
            if (withInit)
            {
                return total; // its init expression follows; not worth decoding for a count
            }
        }

        return total;
    }

    private static long Saturating(long total, ulong elements)
    {
        const long PerElement = Run.WasmContainerRunner.TableElementBytes;
        return elements > (ulong)((long.MaxValue - total) / PerElement) ? long.MaxValue : total + ((long)elements * PerElement);
    }

    private static bool SkipRefType(ReadOnlySpan<byte> bytes, ref int offset)
    {
        if (offset >= bytes.Length)
        {
            return false;
        }

        var type = bytes[offset++];
        if (type is 0x63 or 0x64) // (ref null? heaptype): a signed LEB heap type follows
        {
            return TryLeb(bytes, ref offset, out _);
        }

        return type >= 0x60;
    }

    private static bool TryLeb(ReadOnlySpan<byte> bytes, ref int offset, out ulong value)
    {
        value = 0;
        for (var shift = 0; shift < 64 && offset < bytes.Length; shift += 7)
        {
            var b = bytes[offset++];
            value |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0)
            {
                return true;
            }
        }

        return false;
    }
}
