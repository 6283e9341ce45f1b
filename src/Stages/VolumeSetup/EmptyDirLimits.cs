using System.Runtime.InteropServices;

namespace Krustlet.Stages.VolumeSetup;

/// <summary>How an emptyDir's <c>sizeLimit</c> is enforced (<c>Volumes:EmptyDirSizeLimit</c>).</summary>
public enum EmptyDirSizeLimitMode
{
    /// <summary>
    /// As the kubelet: the volume is measured every <see cref="VolumeOptions.SizeCheckInterval"/> and when a
    /// container exits, and a pod over its limit is evicted. Writes are not stopped, so a guest may write
    /// past the limit until the next measurement.
    /// </summary>
    Evict,

    /// <summary>
    /// A size-limited tmpfs is mounted on each emptyDir that has a sizeLimit (the agent must run as root,
    /// or with CAP_SYS_ADMIN): writes past the limit fail with ENOSPC, and the pod is also evicted as in
    /// <see cref="Evict"/>. The volume's contents then live in memory, as the kubelet's <c>medium: Memory</c>.
    /// </summary>
    Tmpfs,
}

/// <summary>Size-limited tmpfs mounts for emptyDir volumes, and unmounting what a pod's directory holds before it is removed.</summary>
public static partial class EmptyDirLimits
{
    private const ulong MsNoSuid = 2, MsNoDev = 4, MsNoExec = 8;
    private const int MntDetach = 2;

    /// <summary>Whether this process may mount (it runs as root); the setting is refused at start otherwise.</summary>
    public static bool CanMount => OperatingSystem.IsLinux() && geteuid() == 0;

    /// <summary>Mounts a tmpfs of <paramref name="bytes"/> (rounded up to whole pages by the kernel) on <paramref name="path"/>, unless one is there already (a restarted agent).</summary>
    /// <exception cref="PodConfigException">The mount failed.</exception>
    public static void MountTmpfs(string path, long bytes, string what)
    {
        if (IsMountPoint(path))
        {
            return;
        }

        if (!OperatingSystem.IsLinux() || mount("krustlet-emptydir", path, "tmpfs", MsNoSuid | MsNoDev | MsNoExec, $"size={Math.Max(bytes, 1)},mode=0700") != 0)
        {
            throw new PodConfigException($"{what}: mounting a size-limited tmpfs failed: {(OperatingSystem.IsLinux() ? Marshal.GetLastPInvokeErrorMessage() : "mounts need Linux")}");
        }
    }

    /// <summary>Unmounts every mount at or under <paramref name="directory"/> (deepest first), then removes the directory.</summary>
    public static void RemoveDirectory(string directory)
    {
        if (OperatingSystem.IsLinux())
        {
            var prefix = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
            foreach (var mountPoint in MountPoints().Where(m => m == prefix || m.StartsWith(prefix + "/", StringComparison.Ordinal)).OrderByDescending(m => m.Length))
            {
                if (umount2(mountPoint, MntDetach) != 0)
                {
                    throw new IOException($"unmounting {mountPoint}: {Marshal.GetLastPInvokeErrorMessage()}");
                }
            }
        }

        Directory.Delete(directory, recursive: true);
    }

    /// <summary>Whether <paramref name="path"/> is a mount point (listed in /proc/self/mountinfo).</summary>
    public static bool IsMountPoint(string path) =>
        OperatingSystem.IsLinux() && MountPoints().Contains(Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)));

    private static List<string> MountPoints()
    {
        const string table = "/proc/self/mountinfo";
        if (!File.Exists(table))
        {
            return [];
        }

        // Field 5 is the mount point, with space, tab, newline and backslash written as octal escapes.
        return File.ReadAllLines(table).Select(l => l.Split(' ')).Where(f => f.Length > 4).Select(f => Unescape(f[4])).ToList();
    }

    private static string Unescape(string field) =>
        field.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal).Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string source, string target, string type, ulong flags, string data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int umount2(string target, int flags);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint geteuid();
}
