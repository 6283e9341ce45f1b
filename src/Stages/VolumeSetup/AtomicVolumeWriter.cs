using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Krustlet.Stages.VolumeSetup;

/// <summary>One file of a projected volume: its path under the volume, its bytes and its Unix mode.</summary>
public sealed record VolumeFile(string Path, byte[] Content, int Mode);

/// <summary>
/// Writes a configMap, secret, downwardAPI or projected volume the way the kubelet's AtomicWriter does,
/// so a running guest never sees half of an update: the files go into a fresh timestamped directory
/// <c>..YYYY_MM_DD_hh_mm_ss.nnnnnnnnn</c>, the <c>..data</c> link is pointed at it by renaming a new
/// link over it (one rename(2)), and every user-visible top-level entry is a relative link
/// <c>key -> ..data/key</c>; the old directory is removed after the swap. Every link is relative and
/// stays inside the volume, so a guest reading through its WASI preopen follows them (Wasmtime's
/// cap-std refuses only links that leave the preopen). The volume directory itself is never replaced,
/// so a running guest's preopen keeps pointing at it.
/// </summary>
public static partial class AtomicVolumeWriter
{
    /// <summary>The link that names the current payload directory.</summary>
    public const string DataLink = "..data";

    private const string NewDataLink = "..data_tmp";

    /// <summary>
    /// Makes <paramref name="root"/> hold exactly <paramref name="files"/>; false when it already did
    /// (nothing is written). Paths must have been checked with <see cref="VolumeFiles.Validate"/>.
    /// </summary>
    /// <exception cref="PodConfigException">A path collides with another, or the volume holds a link the agent did not make.</exception>
    public static bool Write(string root, IReadOnlyList<VolumeFile> files, TimeProvider time, string what)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(time);
        PrivateDirectory.Create(root);
        var current = CurrentPayloadDirectory(root);
        if (current is null)
        {
            // Not written by this writer yet (a fresh volume, or one an older agent wrote in place):
            // what is in it is the agent's own projection, so it is cleared.
            Clear(root);
        }
        else if (Matches(Path.Combine(root, current), files))
        {
            return false;
        }

        var payload = CreatePayloadDirectory(root, time);
        try
        {
            foreach (var file in files)
            {
                VolumeFiles.Write(Path.Combine(root, payload), file.Path, file.Content, file.Mode, what);
            }

            var visible = files.Select(f => f.Path.Split('/')[0]).ToHashSet(StringComparer.Ordinal);
            foreach (var name in visible)
            {
                var link = Path.Combine(root, name);
                var info = new FileInfo(link);
                if (info.LinkTarget is { } target)
                {
                    if (target != $"{DataLink}/{name}")
                    {
                        throw new PodConfigException($"{what}: \"{name}\" is a link the agent did not make; refusing to follow it");
                    }

                    continue;
                }

                if (info.Exists || Directory.Exists(link))
                {
                    throw new PodConfigException($"{what}: \"{name}\" exists in the volume and is not the agent's link");
                }

                File.CreateSymbolicLink(link, $"{DataLink}/{name}");
            }

            // The swap: a new ..data link renamed over the old one is atomic (rename(2) replaces it).
            var newLink = Path.Combine(root, NewDataLink);
            File.Delete(newLink);
            File.CreateSymbolicLink(newLink, payload);
            Rename(newLink, Path.Combine(root, DataLink));

            foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos())
            {
                if (!entry.Name.StartsWith("..", StringComparison.Ordinal) && !visible.Contains(entry.Name) && entry.LinkTarget is not null)
                {
                    entry.Delete(); // a key no longer in the payload
                }
            }
        }
        catch
        {
            if (CurrentPayloadDirectory(root) != payload)
            {
                Directory.Delete(Path.Combine(root, payload), recursive: true);
            }

            throw;
        }

        if (current is not null)
        {
            Directory.Delete(Path.Combine(root, current), recursive: true);
        }

        return true;
    }

    /// <summary>The payload directory <c>..data</c> points at (a name in <paramref name="root"/>), or null when there is none.</summary>
    public static string? CurrentPayloadDirectory(string root)
    {
        var target = new FileInfo(Path.Combine(root, DataLink)).LinkTarget;
        return target is not null && IsPayloadName(target) && Directory.Exists(Path.Combine(root, target)) ? target : null;
    }

    private static bool IsPayloadName(string name) =>
        name.StartsWith("..", StringComparison.Ordinal) && !name.Contains('/', StringComparison.Ordinal) && name is not DataLink and not NewDataLink;

    // The kubelet names it with os.MkdirTemp(dir, "..2006_01_02_15_04_05."): the time of the write and a random suffix.
    private static string CreatePayloadDirectory(string root, TimeProvider time)
    {
        var stamp = time.GetUtcNow().UtcDateTime.ToString("yyyy_MM_dd_HH_mm_ss", CultureInfo.InvariantCulture);
        while (true)
        {
            var name = $"..{stamp}.{RandomNumberGenerator.GetInt32(1_000_000_000).ToString("D9", CultureInfo.InvariantCulture)}";
            var path = Path.Combine(root, name);
            if (Directory.Exists(path) || File.Exists(path))
            {
                continue;
            }

            PrivateDirectory.Create(path);
            if (!OperatingSystem.IsWindows())
            {
                // Readable by the pod's files' modes, as the kubelet's 0755 payload directories.
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            }

            return name;
        }
    }

    private static bool Matches(string payload, IReadOnlyList<VolumeFile> files)
    {
        var present = new DirectoryInfo(payload).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Select(f => Path.GetRelativePath(payload, f.FullName).Replace(Path.DirectorySeparatorChar, '/'))
            .ToHashSet(StringComparer.Ordinal);
        if (present.Count != files.Count)
        {
            return false;
        }

        foreach (var file in files)
        {
            var path = Path.Combine(payload, file.Path);
            if (!present.Contains(file.Path) || !File.ReadAllBytes(path).AsSpan().SequenceEqual(file.Content))
            {
                return false;
            }

            if (!OperatingSystem.IsWindows() && (int)File.GetUnixFileMode(path) != file.Mode)
            {
                return false;
            }
        }

        return true;
    }

    private static void Clear(string root)
    {
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos())
        {
            if (entry is DirectoryInfo directory && directory.LinkTarget is null)
            {
                directory.Delete(recursive: true);
            }
            else
            {
                entry.Delete();
            }
        }
    }

    private static void Rename(string from, string to)
    {
        if (OperatingSystem.IsWindows())
        {
            File.Move(from, to, overwrite: true);
            return;
        }

        if (rename(from, to) != 0)
        {
            throw new IOException($"rename {from} -> {to}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int rename(string from, string to);
}
