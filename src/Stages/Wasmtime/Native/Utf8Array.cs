using System.Runtime.InteropServices;

namespace Krustlet.Stages.Wasmtime.Native;

/// <summary>NUL-terminated UTF-8 copies of strings in native memory, freed together.</summary>
internal sealed unsafe class Utf8Array : IDisposable
{
    public byte** Pointers { get; }

    private readonly int _count;

    public Utf8Array(IReadOnlyList<string> values)
    {
        _count = values.Count;
        Pointers = (byte**)NativeMemory.AllocZeroed((nuint)Math.Max(1, _count), (nuint)sizeof(byte*));
        try
        {
            for (var i = 0; i < _count; i++)
            {
                Pointers[i] = NativeMethods.Utf8(values[i]);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        for (var i = 0; i < _count; i++)
        {
            NativeMemory.Free(Pointers[i]);
        }
        NativeMemory.Free(Pointers);
    }
}
