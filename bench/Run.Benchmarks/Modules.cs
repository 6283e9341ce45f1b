using System.Diagnostics;
using System.Security.Cryptography;

namespace Krustlet.Run.Benchmarks;

/// <summary>Builds the benchmark modules with the same tools the tests use (clang for wasm32-wasi, wat2wasm).</summary>
internal static class Modules
{
    public const string Trivial = """(module (memory (export "memory") 1) (func (export "_start")))""";

    public static string FromWat(string directory, string wat)
    {
        var source = Path.Combine(directory, "trivial.wat");
        var output = Path.Combine(directory, "trivial.wasm");
        File.WriteAllText(source, wat);
        Run("wat2wasm", "-o", output, source);
        return output;
    }

    public static string FromC(string directory, string name)
    {
        var output = Path.Combine(directory, $"{name}.wasm");
        Run("clang", "--target=wasm32-wasi", "-O2", "-s", "-o", output, Path.Combine(AppContext.BaseDirectory, $"{name}.c"));
        return output;
    }

    public static string Digest(string path) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    private static void Run(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} failed: {stderr}");
        }
    }
}
