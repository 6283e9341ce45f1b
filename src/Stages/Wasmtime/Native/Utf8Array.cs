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

/// <summary>The parts of a wasi_config_t both runtimes set alike: argv, environment, preopened directories.</summary>
internal static unsafe class WasiConfigParts
{
    public static void SetCommandLine(nint config, IReadOnlyList<string> args, IReadOnlyList<KeyValuePair<string, string>> environment)
    {
        using (var argv = new Utf8Array(args))
        {
            Check(NativeMethods.wasi_config_set_argv(config, (nuint)args.Count, argv.Pointers), "wasi_config_set_argv");
        }

        using var names = new Utf8Array([.. environment.Select(e => e.Key)]);
        using var values = new Utf8Array([.. environment.Select(e => e.Value)]);
        Check(NativeMethods.wasi_config_set_env(config, (nuint)environment.Count, names.Pointers, values.Pointers), "wasi_config_set_env");
    }

    public static void Preopen(nint config, IEnumerable<NativePreopen> preopens)
    {
        foreach (var preopen in preopens)
        {
            using var paths = new Utf8Array([preopen.HostPath, preopen.GuestPath]);
            Check(NativeMethods.wasi_config_preopen_dir(config, paths.Pointers[0], paths.Pointers[1], preopen.Mutable), $"wasi_config_preopen_dir({preopen.HostPath} as {preopen.GuestPath})");
        }
    }

    public static void Check(bool ok, string call)
    {
        if (!ok)
        {
            throw new WasmtimeNativeException($"{call} failed (a path that cannot be opened, or text that is not UTF-8)");
        }
    }
}
