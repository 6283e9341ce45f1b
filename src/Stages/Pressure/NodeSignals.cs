using System.Globalization;
using System.Runtime.InteropServices;

namespace Krustlet.Stages.Pressure;

/// <summary>An amount available out of a capacity (bytes, inodes or PIDs).</summary>
public readonly record struct Availability(long Available, long Capacity);

/// <summary>What the eviction manager observed of the node at one moment; null where the signal could not be read.</summary>
public sealed record NodeSignals(Availability? Memory, Availability? NodeFsBytes, Availability? NodeFsInodes, Availability? ImageFsBytes, Availability? ImageFsInodes, Availability? Pids)
{
    public Availability? this[EvictionSignal signal] => signal switch
    {
        EvictionSignal.MemoryAvailable => Memory,
        EvictionSignal.NodeFsAvailable => NodeFsBytes,
        EvictionSignal.NodeFsInodesFree => NodeFsInodes,
        EvictionSignal.ImageFsAvailable => ImageFsBytes,
        EvictionSignal.ImageFsInodesFree => ImageFsInodes,
        EvictionSignal.PidAvailable => Pids,
        _ => null,
    };
}

/// <summary>Reads the node's signals.</summary>
public interface INodeSignalSource
{
    NodeSignals Read();
}

/// <summary>
/// The signals from Linux, as the kubelet reads them: <c>MemAvailable</c> of <c>/proc/meminfo</c> out of
/// <c>MemTotal</c>; <c>statvfs</c> of the node filesystem (the pods' directory) and of the image filesystem
/// (the images' directory), bytes available to unprivileged users and free inodes; the tasks the kernel
/// runs (<c>/proc/loadavg</c>) against <c>kernel.pid_max</c> and <c>kernel.threads-max</c>, the smaller.
/// </summary>
public sealed partial class LinuxNodeSignalSource(string nodeFsPath, string imageFsPath) : INodeSignalSource
{
    public NodeSignals Read()
    {
        var (nodeBytes, nodeInodes) = Filesystem(nodeFsPath);
        var (imageBytes, imageInodes) = Filesystem(imageFsPath);
        return new NodeSignals(Memory(), nodeBytes, nodeInodes, imageBytes, imageInodes, Pids());
    }

    private static Availability? Memory()
    {
        long? total = null, available = null;
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                {
                    total = Kilobytes(line);
                }
                else if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                {
                    available = Kilobytes(line);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        return total is { } t && available is { } a ? new Availability(a, t) : null;
    }

    private static long? Kilobytes(string line) =>
        long.TryParse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], NumberStyles.None, CultureInfo.InvariantCulture, out var kb) ? kb * 1024 : null;

    private static Availability? Pids()
    {
        try
        {
            // The fourth field is "running/total" tasks, every thread counted.
            var fields = File.ReadAllText("/proc/loadavg").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var tasks = long.Parse(fields[3].Split('/')[1], NumberStyles.None, CultureInfo.InvariantCulture);
            var max = Math.Min(ReadLong("/proc/sys/kernel/pid_max"), ReadLong("/proc/sys/kernel/threads-max"));
            return new Availability(Math.Max(0, max - tasks), max);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    private static long ReadLong(string path) => long.Parse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture);

    private static (Availability? Bytes, Availability? Inodes) Filesystem(string path)
    {
        // The directory may not exist yet: its nearest existing parent is on the filesystem it will be on.
        var probe = Path.GetFullPath(path);
        while (!Directory.Exists(probe) && Path.GetDirectoryName(probe) is { } parent)
        {
            probe = parent;
        }

        if (StatVfsCall(probe, out var stat) != 0)
        {
            return (null, null);
        }

        var block = (long)stat.FragmentSize;
        return (new Availability((long)stat.BlocksAvailable * block, (long)stat.Blocks * block), stat.Files == 0 ? null : new Availability((long)stat.FilesFree, (long)stat.Files));
    }

    // struct statvfs of glibc on 64-bit Linux, field for field.
    [StructLayout(LayoutKind.Sequential)]
    private struct StatVfs
    {
        public ulong BlockSize;
        public ulong FragmentSize;
        public ulong Blocks;
        public ulong BlocksFree;
        public ulong BlocksAvailable;
        public ulong Files;
        public ulong FilesFree;
        public ulong FilesAvailable;
        public ulong FilesystemId;
        public ulong Flags;
        public ulong NameMax;
        public long Spare0;
        public long Spare1;
        public long Spare2;
    }

    [LibraryImport("libc", EntryPoint = "statvfs", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int StatVfsCall(string path, out StatVfs buf);
}
