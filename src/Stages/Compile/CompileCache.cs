using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Krustlet.Stages.Wasmtime.Native;
using Wasmtime;
using Wasmtime.Components;

namespace Krustlet.Stages.Compile;

/// <summary>
/// Compiled artifacts by content digest: in memory (shared by every pod that uses the digest) and on
/// disk under <c>&lt;cache dir&gt;/&lt;engine fingerprint&gt;/&lt;digest&gt;.cwasm</c>, so a restart or a
/// second pod skips compilation. Concurrent requests for one digest compile once.
/// </summary>
/// <remarks>
/// An entry on disk starts with a header naming the source digest and the SHA-256 of the artifact that
/// follows; an entry whose header, hash or deserialization fails is deleted and the module recompiled,
/// so a corrupt or foreign file is never loaded as the wrong module. Artifacts compiled with other
/// engine settings or another Wasmtime live under another fingerprint and are never read.
/// </remarks>
public sealed partial class CompileCache
{
    private const string Magic = "KRUSTLET-CWASM-1";

    private readonly WasmEngineHost _host;
    private readonly string _directory;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Lazy<Task<CompiledArtifact>>> _memory = new(StringComparer.Ordinal);
    private long _memoryHits;
    private long _diskHits;
    private long _compiles;
    private long _discarded;

    /// <param name="host">The shared engine.</param>
    /// <param name="cacheRoot">The cache directory under the data directory; created owner-only.</param>
    /// <param name="logger">Where discarded entries are reported.</param>
    public CompileCache(WasmEngineHost host, string cacheRoot, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentException.ThrowIfNullOrEmpty(cacheRoot);
        _host = host;
        _directory = Path.Combine(cacheRoot, host.Fingerprint);
        _logger = logger ?? NullLogger.Instance;
        PrivateDirectory.Create(cacheRoot);
        PrivateDirectory.Create(_directory);
    }

    /// <summary>The directory holding this engine configuration's artifacts.</summary>
    public string Directory => _directory;

    public long MemoryHits => Interlocked.Read(ref _memoryHits);

    public long DiskHits => Interlocked.Read(ref _diskHits);

    public long Compiles => Interlocked.Read(ref _compiles);

    /// <summary>Cache files found corrupt or unusable, deleted and recompiled.</summary>
    public long Discarded => Interlocked.Read(ref _discarded);

    /// <summary>The path an artifact for <paramref name="digest"/> is stored at.</summary>
    public string PathFor(string digest) => Path.Combine(_directory, FileNameFor(digest));

    /// <summary>
    /// Returns the compiled artifact for the module at <paramref name="modulePath"/>, whose content digest
    /// is <paramref name="digest"/>. Throws <see cref="CompileException"/> with the validator's message
    /// when the bytes are not a valid module or component.
    /// </summary>
    public async Task<CompiledArtifact> GetAsync(string digest, string modulePath, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(digest);
        ArgumentException.ThrowIfNullOrEmpty(modulePath);
        Lazy<Task<CompiledArtifact>>? mine = null;
        mine = new Lazy<Task<CompiledArtifact>>(() => CompileSharedAsync(digest, modulePath, mine!));
        var entry = _memory.GetOrAdd(digest, mine);
        if (entry.IsValueCreated && entry.Value.IsCompletedSuccessfully)
        {
            Interlocked.Increment(ref _memoryHits);
        }

        return await entry.Value.WaitAsync(cancellationToken);
    }

    // Compiles once for every waiter. A failure is not remembered, whoever was waiting: the next
    // request tries again (the same digest cannot change, but a read error can pass).
    private async Task<CompiledArtifact> CompileSharedAsync(string digest, string modulePath, Lazy<Task<CompiledArtifact>> entry)
    {
        try
        {
            return await Task.Run(() => Load(digest, modulePath), CancellationToken.None);
        }
        catch
        {
            _memory.TryRemove(new KeyValuePair<string, Lazy<Task<CompiledArtifact>>>(digest, entry));
            throw;
        }
    }

    private CompiledArtifact Load(string digest, string modulePath)
    {
        var cachePath = PathFor(digest);
        if (TryLoadFromDisk(digest, cachePath, modulePath) is { } cached)
        {
            Interlocked.Increment(ref _diskHits);
            return cached;
        }

        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(modulePath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CompileException($"cannot read module {modulePath}: {ex.Message}", ex);
        }

        var actual = ImagePull.ContentDigest.Of(bytes);
        if (!string.Equals(actual, digest, StringComparison.OrdinalIgnoreCase))
        {
            throw new CompileException($"module content has digest {actual}, expected {digest}");
        }

        var kind = WasmBinary.Detect(bytes);
        CompiledArtifact artifact;
        byte[] serialized;
        try
        {
            switch (kind)
            {
                case WasmBinaryKind.CoreModule:
                    NativeModule module;
                    try
                    {
                        module = NativeModule.Compile(_host.Native.Engine, bytes);
                    }
                    catch (WasmtimeNativeException ex)
                    {
                        throw new CompileException($"WebAssembly module '{digest}' is not valid: {FirstLines(ex.Message)}", ex);
                    }

                    artifact = CompiledArtifact.ForModule(digest, module, _host, CompileSource.Compiled, WasmTables.DeclaredBytes(bytes));
                    serialized = module.Serialize();
                    break;
                case WasmBinaryKind.Component:
                    var component = Component.FromBytes(_host.Engine, bytes);
                    artifact = CompiledArtifact.ForComponent(digest, component, CompileSource.Compiled, WasmTables.DeclaredBytes(bytes));
                    serialized = component.Serialize();
                    break;
                default:
                    throw new CompileException("not a WebAssembly module or component (no \\0asm header with a known version)");
            }
        }
        catch (Exception ex) when (ex is WasmtimeException or WasmtimeNativeException)
        {
            throw new CompileException(FirstLines(ex.Message), ex);
        }

        Interlocked.Increment(ref _compiles);
        Store(digest, kind, cachePath, serialized);
        return artifact;
    }

    private CompiledArtifact? TryLoadFromDisk(string digest, string cachePath, string modulePath)
    {
        if (!File.Exists(cachePath))
        {
            return null;
        }

        try
        {
            var data = File.ReadAllBytes(cachePath);
            var (kind, artifact) = ParseEntry(data, digest);
            var tableBytes = WasmTables.DeclaredBytes(modulePath); // the source's table sections (not in the compiled artifact)
            return kind == WasmBinaryKind.Component
                ? CompiledArtifact.ForComponent(digest, Component.Deserialize(_host.Engine, artifact.Span), CompileSource.DiskCache, tableBytes)
                : CompiledArtifact.ForModule(digest, NativeModule.Deserialize(_host.Native.Engine, artifact.Span), _host, CompileSource.DiskCache, tableBytes);
        }
        catch (Exception ex) when (ex is InvalidDataException or WasmtimeException or WasmtimeNativeException or IOException or UnauthorizedAccessException)
        {
            Log.Discarded(_logger, cachePath, ex.Message);
            Interlocked.Increment(ref _discarded);
            TryDelete(cachePath);
            return null;
        }
    }

    // Header: magic, kind, source digest and the artifact's SHA-256, one per line; then the artifact.
    private static (WasmBinaryKind Kind, ReadOnlyMemory<byte> Artifact) ParseEntry(byte[] data, string digest)
    {
        var offset = 0;
        string NextLine()
        {
            var end = Array.IndexOf(data, (byte)'\n', offset);
            if (end < 0 || end - offset > 200)
            {
                throw new InvalidDataException("cache entry header is truncated");
            }

            var line = Encoding.ASCII.GetString(data, offset, end - offset);
            offset = end + 1;
            return line;
        }

        if (NextLine() != Magic)
        {
            throw new InvalidDataException("cache entry has no Krustlet header");
        }

        var kind = Enum.TryParse<WasmBinaryKind>(NextLine(), out var k) && k != WasmBinaryKind.NotWasm
            ? k
            : throw new InvalidDataException("cache entry names no artifact kind");
        if (NextLine() != digest)
        {
            throw new InvalidDataException("cache entry belongs to another digest");
        }

        var expectedHash = NextLine();
        var artifact = data.AsMemory(offset);
        if (Convert.ToHexStringLower(SHA256.HashData(artifact.Span)) != expectedHash)
        {
            throw new InvalidDataException("cache entry's artifact does not match its hash");
        }

        return (kind, artifact);
    }

    private void Store(string digest, WasmBinaryKind kind, string cachePath, byte[] serialized)
    {
        var header = Encoding.ASCII.GetBytes($"{Magic}\n{kind}\n{digest}\n{Convert.ToHexStringLower(SHA256.HashData(serialized))}\n");
        var temp = $"{cachePath}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var file = new FileStream(temp, PrivateFileOptions()))
            {
                file.Write(header);
                file.Write(serialized);
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, cachePath, overwrite: true);
        }
        catch (IOException ex)
        {
            // The artifact is in memory; only the next restart pays for this.
            Log.StoreFailed(_logger, cachePath, ex.Message);
            TryDelete(temp);
        }
    }

    private static string FileNameFor(string digest)
    {
        var safe = new StringBuilder(digest.Length);
        foreach (var c in digest)
        {
            safe.Append(char.IsAsciiLetterOrDigit(c) ? c : '_');
        }

        return safe.Append(".cwasm").ToString();
    }

    private static string FirstLines(string message)
    {
        // Wasmtime's chain of causes, one per line under "Caused by:": said as one sentence, outermost first.
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return string.Join(": ", lines.TakeWhile(l => !l.StartsWith("Stack backtrace", StringComparison.Ordinal)).Where(l => l != "Caused by:").Select(l => l.TrimStart('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ' ')).Take(4));
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static FileStreamOptions PrivateFileOptions()
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        return options;
    }

    private static partial class Log
    {
        [LoggerMessage(2000, LogLevel.Warning, "Discarded compile cache entry {Path}: {Reason}; recompiling")]
        public static partial void Discarded(ILogger logger, string path, string reason);

        [LoggerMessage(2001, LogLevel.Warning, "Could not store compiled artifact {Path}: {Reason}")]
        public static partial void StoreFailed(ILogger logger, string path, string reason);
    }
}
