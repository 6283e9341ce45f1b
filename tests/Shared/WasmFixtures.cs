using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Krustlet.Tests.Shared;

/// <summary>
/// Builds the WebAssembly test programs at test time: C sources under Fixtures/wasm with Debian's clang
/// for wasm32-wasi, WebAssembly text with wabt's wat2wasm. Nothing binary is committed.
/// </summary>
internal static class WasmFixtures
{
    private static readonly string BuildDirectory = Directory.CreateTempSubdirectory("krustlet-wasm-fixtures-").FullName;
    private static readonly ConcurrentDictionary<string, Lazy<string>> Built = new(StringComparer.Ordinal);

    /// <summary>Compiles Fixtures/wasm/&lt;name&gt;.c once per test run; returns the module's path.</summary>
    public static string C(string name) => Built.GetOrAdd($"c:{name}", _ => new Lazy<string>(() =>
    {
        var source = Path.Combine(AppContext.BaseDirectory, "Fixtures", "wasm", $"{name}.c");
        var output = Path.Combine(BuildDirectory, $"{name}.wasm");
        Tool.Run("clang", "--target=wasm32-wasi", "-O2", "-s", "-o", output, source);
        return output;
    })).Value;

    /// <summary>Assembles WebAssembly text into a binary module file; returns its path.</summary>
    public static string Wat(string text)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)))[..16];
        return Built.GetOrAdd($"wat:{hash}", _ => new Lazy<string>(() =>
        {
            var source = Path.Combine(BuildDirectory, $"{hash}.wat");
            var output = Path.Combine(BuildDirectory, $"{hash}.wasm");
            System.IO.File.WriteAllText(source, text);
            Tool.Run("wat2wasm", "--enable-all", "-o", output, source);
            return output;
        })).Value;
    }

    /// <summary>Writes bytes to a fresh file; returns its path.</summary>
    public static string File(byte[] bytes)
    {
        var path = Path.Combine(BuildDirectory, $"{Guid.NewGuid():N}.bin");
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>The content digest of a file, as an image store names it.</summary>
    public static string Digest(string path) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(System.IO.File.ReadAllBytes(path)));
}
