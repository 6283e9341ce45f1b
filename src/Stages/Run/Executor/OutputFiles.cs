using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Krustlet.Stages.Run.Executor;

/// <summary>
/// A guest's stdout and stderr as two in-memory files (memfd), which Wasmtime writes synchronously on the
/// guest's own stack (<c>wasi_config_set_stdout_file</c> on <c>/proc/self/fd/N</c>), read after every
/// poll from where the last read ended. A custom stdout callback costs a hop to Wasmtime's Tokio thread
/// and back for every write (its stream is an AsyncWriteStream); short-lived HTTP request instances use
/// these instead. The files come from a small pool and are emptied (ftruncate) when given back.
/// </summary>
internal sealed partial class OutputFiles : IDisposable
{
    private const int MaxPooled = 256;
    private static readonly ConcurrentBag<int> Pool = [];
    private static int _pooled;

    private readonly int _stdout;
    private readonly int _stderr;
    private long _stdoutRead;
    private long _stderrRead;
    private bool _disposed;

    private OutputFiles(int stdout, int stderr)
    {
        _stdout = stdout;
        _stderr = stderr;
    }

    /// <summary>Two empty in-memory files, or null where memfd is not available.</summary>
    public static OutputFiles? Rent()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var stdout = Take();
        if (stdout < 0)
        {
            return null;
        }

        var stderr = Take();
        if (stderr < 0)
        {
            Give(stdout);
            return null;
        }

        return new OutputFiles(stdout, stderr);
    }

    /// <summary>The path Wasmtime opens the guest's stdout at.</summary>
    public string StdoutPath => Path(_stdout);

    public string StderrPath => Path(_stderr);

    private static string Path(int fd) => string.Create(CultureInfo.InvariantCulture, $"/proc/self/fd/{fd}");

    /// <summary>Hands what the guest wrote since the last drain to the output.</summary>
    public void Drain(IGuestOutput output, bool final)
    {
        Span<byte> buffer = stackalloc byte[16 * 1024];
        Read(_stderr, ref _stderrRead, buffer, static (bytes, o, _) => o.Stderr(bytes), output, final: false);
        var any = Read(_stdout, ref _stdoutRead, buffer, static (bytes, o, last) => o.Stdout(bytes, last), output, final);
        if (final && !any)
        {
            output.Stdout([], true);
        }
    }

    private delegate void Sink(ReadOnlySpan<byte> bytes, IGuestOutput output, bool final);

    // Reads to the end; the last chunk is marked final when the guest has ended. True when any was read.
    private static bool Read(int fd, ref long offset, Span<byte> buffer, Sink sink, IGuestOutput output, bool final)
    {
        var any = false;
        var pending = 0;
        while (true)
        {
            var n = PRead(fd, buffer[pending..], offset + pending);
            if (n <= 0)
            {
                break;
            }

            pending += (int)n;
            if (pending == buffer.Length)
            {
                sink(buffer, output, false);
                offset += pending;
                pending = 0;
                any = true;
            }
        }

        if (pending > 0 || (any && final))
        {
            sink(buffer[..pending], output, final);
            offset += pending;
            any = true;
        }

        return any;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Give(_stdout);
        Give(_stderr);
    }

    private static int Take()
    {
        if (Pool.TryTake(out var fd))
        {
            Interlocked.Decrement(ref _pooled);
            return fd;
        }

        return MemfdCreate("krustlet-guest-output", MfdCloexec);
    }

    // Emptied (what the guest wrote may not all have been read: a killed guest) and pooled, or closed.
    private static void Give(int fd)
    {
        if (FTruncate(fd, 0) != 0 || Interlocked.Increment(ref _pooled) > MaxPooled)
        {
            Interlocked.Decrement(ref _pooled);
            _ = Close(fd); // nothing to do if even close fails
            return;
        }

        Pool.Add(fd);
    }

    private const uint MfdCloexec = 1;

    [LibraryImport("libc", EntryPoint = "memfd_create", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MemfdCreate(string name, uint flags);

    [LibraryImport("libc", EntryPoint = "ftruncate")]
    private static partial int FTruncate(int fd, long length);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    private static unsafe nint PRead(int fd, Span<byte> buffer, long offset)
    {
        fixed (byte* data = buffer)
        {
            return PReadNative(fd, data, (nuint)buffer.Length, offset);
        }
    }

    [LibraryImport("libc", EntryPoint = "pread")]
    private static unsafe partial nint PReadNative(int fd, byte* buffer, nuint count, long offset);
}
