using System.Globalization;

namespace Krustlet.Host.KubeletApi;

/// <summary>
/// Reads the CRI entries of one container run in order: its rotated files oldest first
/// (<c>n.log.K</c> … <c>n.log.1</c>), then <c>n.log</c>, and whatever is appended later. The file being
/// read stays open, so when the writer rotates it (renames it to <c>n.log.1</c> and starts a new
/// <c>n.log</c>) the reader finishes it and moves on to the file after it.
/// </summary>
/// <remarks>
/// Which file an open handle is now is read from <c>/proc/self/fd</c> (Linux). Elsewhere a rotation is
/// noticed when <c>n.log</c> becomes shorter than what was read from it.
/// </remarks>
internal sealed class RunLogReader : IDisposable
{
    private const int ChunkBytes = 64 * 1024;

    private static readonly bool HasProcFd = Directory.Exists("/proc/self/fd");

    private readonly string _path;
    private readonly string _name;
    private readonly byte[] _chunk = new byte[ChunkBytes];
    private readonly List<byte> _carry = [];
    private FileStream? _file;

    /// <param name="path">The run's current file, <c>&lt;container dir&gt;/&lt;n&gt;.log</c>.</param>
    public RunLogReader(string path)
    {
        _path = Path.GetFullPath(path);
        _name = Path.GetFileName(_path);
    }

    /// <summary>The restart numbers that have a log in <paramref name="containerDirectory"/>, ascending.</summary>
    public static IReadOnlyList<int> Runs(string containerDirectory)
    {
        if (!Directory.Exists(containerDirectory))
        {
            return [];
        }

        var runs = new SortedSet<int>();
        foreach (var file in Directory.EnumerateFiles(containerDirectory))
        {
            var name = Path.GetFileName(file);
            var end = name.IndexOf(".log", StringComparison.Ordinal);
            if (end > 0 && (end + 4 == name.Length || name[end + 4] == '.')
                && int.TryParse(name.AsSpan(0, end), NumberStyles.None, CultureInfo.InvariantCulture, out var run))
            {
                runs.Add(run);
            }
        }

        return [.. runs];
    }

    public static string RunPath(string containerDirectory, int run) =>
        Path.Combine(containerDirectory, string.Create(CultureInfo.InvariantCulture, $"{run}.log"));

    /// <summary>
    /// Reads what is there to read now, at most one chunk, into <paramref name="entries"/>. Returns false
    /// once caught up with the writer (call again later for more).
    /// </summary>
    public bool ReadNext(List<CriLogEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (_file is null)
        {
            _file = OpenOldest();
            if (_file is null)
            {
                return false;
            }
        }

        var read = _file.Read(_chunk);
        if (read > 0)
        {
            Split(_chunk.AsSpan(0, read), entries);
            return true;
        }

        // At the end of the open file: it is final if it has been rotated away from n.log.
        return MoveOn();
    }

    public void Dispose() => _file?.Dispose();

    private void Split(ReadOnlySpan<byte> data, List<CriLogEntry> entries)
    {
        while (data.IndexOf((byte)'\n') is var newline and >= 0)
        {
            ReadOnlySpan<byte> line;
            if (_carry.Count > 0)
            {
                _carry.AddRange(data[..newline]);
                line = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_carry);
            }
            else
            {
                line = data[..newline];
            }

            if (CriLogEntry.Parse(line) is { } entry)
            {
                entries.Add(entry);
            }

            _carry.Clear();
            data = data[(newline + 1)..];
        }

        _carry.AddRange(data); // an entry the writer has not finished yet
    }

    /// <summary>Opens the file after the finished one; false when the open file is still the one written to.</summary>
    private bool MoveOn()
    {
        var name = CurrentName(_file!);
        if (name == _name)
        {
            return false;
        }

        string? next;
        if (name is null)
        {
            next = OldestPath(); // rotated out of existence: continue with the oldest kept file
        }
        else
        {
            var suffix = int.Parse(name.AsSpan(_name.Length + 1), NumberStyles.None, CultureInfo.InvariantCulture);
            next = suffix == 1 ? _path : $"{_path}.{suffix - 1}";
        }

        var opened = next is null ? null : TryOpen(next);
        if (opened is null)
        {
            return false; // the writer is between renaming and creating: try again later
        }

        if (name is not null && CurrentName(_file!) != name)
        {
            opened.Dispose(); // rotated again while opening: the name no longer meant the next file
            return true;
        }

        _file!.Dispose();
        _file = opened;
        _carry.Clear();
        return true;
    }

    /// <summary>The name the open file has now: <c>n.log</c>, <c>n.log.K</c>, or null when it was deleted.</summary>
    private string? CurrentName(FileStream file)
    {
        if (HasProcFd)
        {
            var target = new FileInfo($"/proc/self/fd/{file.SafeFileHandle.DangerousGetHandle()}").LinkTarget;
            if (target is null || target.EndsWith(" (deleted)", StringComparison.Ordinal))
            {
                return null;
            }

            var name = Path.GetFileName(target);
            var rotated = name.StartsWith(_name + ".", StringComparison.Ordinal)
                && int.TryParse(name.AsSpan(_name.Length + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var suffix) && suffix > 0;
            return rotated ? name : _name;
        }

        // Without /proc: a shorter n.log is a new file, so the open one became n.log.1.
        return File.Exists(_path) && new FileInfo(_path).Length < file.Position ? $"{_name}.1" : _name;
    }

    private FileStream? OpenOldest() => OldestPath() is { } path ? TryOpen(path) : null;

    private string? OldestPath()
    {
        var directory = Path.GetDirectoryName(_path)!;
        var prefix = Path.GetFileName(_path) + ".";
        var oldest = Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory)
                .Select(Path.GetFileName)
                .Select(f => f!.StartsWith(prefix, StringComparison.Ordinal) && int.TryParse(f.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var k) ? k : 0)
                .DefaultIfEmpty(0)
                .Max()
            : 0;
        return oldest > 0 ? $"{_path}.{oldest}" : File.Exists(_path) ? _path : null;
    }

    private static FileStream? TryOpen(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }
}
