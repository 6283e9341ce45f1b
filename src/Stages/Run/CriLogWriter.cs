using System.Globalization;
using System.Text;

namespace Krustlet.Stages.Run;

/// <summary>Which output stream a log line came from.</summary>
public enum LogStream
{
    Stdout,
    Stderr,
}

/// <summary>When container logs rotate (the kubelet's containerLogMaxSize and containerLogMaxFiles).</summary>
/// <param name="MaxSizeBytes">A log file is rotated before it would grow past this size.</param>
/// <param name="MaxFiles">How many files a container's log may span, the current one included.</param>
public sealed record LogRotationOptions(long MaxSizeBytes = 10 * 1024 * 1024, int MaxFiles = 5)
{
    public static LogRotationOptions Default { get; } = new();
}

/// <summary>
/// Writes a container's stdout and stderr to its log file in the CRI log format the kubelet uses:
/// <c>&lt;RFC3339Nano time&gt; stdout|stderr F|P &lt;line&gt;</c>, one entry per line. A line longer than
/// <see cref="MaxLineBytes"/> is split into partial (<c>P</c>) entries ending with a full (<c>F</c>) one.
/// Output without a final newline is written when the container ends. Rotation keeps
/// <c>name.log</c>, <c>name.log.1</c>, … <c>name.log.(MaxFiles-1)</c>.
/// </summary>
/// <remarks>
/// Wasmtime calls the write methods from its own thread while the guest waits, one write at a time for a
/// single-threaded guest; the lock keeps stdout and stderr entries whole if they ever overlap.
/// </remarks>
public sealed class CriLogWriter : IDisposable
{
    public const int MaxLineBytes = 16 * 1024;

    private bool _disposed;

    private readonly string _path;
    private readonly LogRotationOptions _rotation;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly List<byte> _stdout = [];
    private readonly List<byte> _stderr = [];
    private FileStream? _file;

    public CriLogWriter(string path, LogRotationOptions rotation, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(rotation);
        if (rotation.MaxFiles < 1 || rotation.MaxSizeBytes < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(rotation), "Log rotation needs at least one file of at least one byte.");
        }

        _path = path;
        _rotation = rotation;
        _time = time ?? TimeProvider.System;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        _file = Open(path);
    }

    public string Path => _path;

    /// <summary>
    /// Creates the log file (and its directory) when missing, empty: a container's log exists before it is
    /// reported running, as a CRI runtime creates it before starting the container.
    /// </summary>
    public static void Create(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        Open(path).Dispose();
    }

    public void Write(LogStream stream, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            var buffer = stream == LogStream.Stdout ? _stdout : _stderr;
            foreach (var b in data)
            {
                if (b == (byte)'\n')
                {
                    WriteEntry(stream, buffer, partial: false);
                }
                else
                {
                    buffer.Add(b);
                    if (buffer.Count >= MaxLineBytes)
                    {
                        WriteEntry(stream, buffer, partial: true);
                    }
                }
            }

            _file?.Flush();
        }
    }

    /// <summary>
    /// Closes the file until the next write reopens it (appending), keeping what is buffered of an
    /// unfinished line: a guest that sleeps long holds no file descriptor meanwhile, so the number of
    /// sleeping containers is not bounded by the process's open-file limit.
    /// </summary>
    public void CloseUntilNextWrite()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _file?.Dispose();
            _file = null;
        }
    }

    /// <summary>Writes what is left without a newline as full lines, and flushes.</summary>
    public void Complete()
    {
        lock (_lock)
        {
            if (_stdout.Count > 0)
            {
                WriteEntry(LogStream.Stdout, _stdout, partial: false);
            }

            if (_stderr.Count > 0)
            {
                WriteEntry(LogStream.Stderr, _stderr, partial: false);
            }

            _file?.Flush();
        }
    }

    /// <summary>Completes the log and closes its file; a second call does nothing.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        Complete();
        _file?.Dispose();
        _file = null;
    }

    /// <summary>The CRI timestamp: RFC 3339 in UTC with nanoseconds.</summary>
    public static string Timestamp(DateTimeOffset at) =>
        at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'00Z'", CultureInfo.InvariantCulture);

    private void WriteEntry(LogStream stream, List<byte> buffer, bool partial)
    {
        var prefix = Encoding.ASCII.GetBytes($"{Timestamp(_time.GetUtcNow())} {(stream == LogStream.Stdout ? "stdout" : "stderr")} {(partial ? 'P' : 'F')} ");
        var length = prefix.Length + buffer.Count + 1;
        var file = _file ??= Open(_path);
        // Opened to append and written only here, so its position is its length (no fstat per entry).
        var size = file.Position;
        if (size > 0 && size + length > _rotation.MaxSizeBytes)
        {
            Rotate();
        }

        file = _file ??= Open(_path); // a rotation opened a new one
        file.Write(prefix);
        file.Write(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(buffer));
        file.WriteByte((byte)'\n');
        buffer.Clear();
    }

    private void Rotate()
    {
        _file?.Dispose();
        if (_rotation.MaxFiles == 1)
        {
            File.Delete(_path);
        }
        else
        {
            File.Delete($"{_path}.{_rotation.MaxFiles - 1}");
            for (var i = _rotation.MaxFiles - 2; i >= 1; i--)
            {
                if (File.Exists($"{_path}.{i}"))
                {
                    File.Move($"{_path}.{i}", $"{_path}.{i + 1}");
                }
            }

            File.Move(_path, $"{_path}.1");
        }

        _file = Open(_path);
    }

    private static FileStream Open(string path) => new(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
}
