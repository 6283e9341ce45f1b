namespace Krustlet.Stages.VolumeSetup;

/// <summary>
/// Writes a volume's files so that nothing can land outside the volume directory: a relative path with
/// no <c>..</c> element, no empty element and no leading <c>/</c>; every directory on the way created
/// here or checked not to be a symbolic link; the file written beside its target and renamed over it.
/// </summary>
public static class VolumeFiles
{
    /// <summary>Checks a path from a key, an item or a subPath; returns its elements.</summary>
    public static string[] Validate(string path, string what)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0)
        {
            throw new PodConfigException($"{what}: the path is empty");
        }

        if (path.StartsWith('/'))
        {
            throw new PodConfigException($"{what}: \"{path}\" must be a relative path");
        }

        var parts = path.Split('/');
        if (parts.Any(p => p == ".."))
        {
            throw new PodConfigException($"{what}: \"{path}\" must not contain '..'");
        }

        if (parts.Any(p => p.Length == 0 || p == "."))
        {
            throw new PodConfigException($"{what}: \"{path}\" has an empty or '.' element");
        }

        if (parts.Any(p => p.Contains('\0', StringComparison.Ordinal)))
        {
            throw new PodConfigException($"{what}: \"{path}\" contains a NUL character");
        }

        return parts;
    }

    /// <summary>Writes <paramref name="content"/> at <paramref name="path"/> under <paramref name="root"/> with Unix mode <paramref name="mode"/>.</summary>
    public static void Write(string root, string path, byte[] content, int mode, string what)
    {
        var parts = Validate(path, what);
        var directory = EnsureDirectory(root, parts[..^1], what);
        var target = Path.Combine(directory, parts[^1]);
        if (new FileInfo(target).LinkTarget is not null || Directory.Exists(target))
        {
            throw new PodConfigException($"{what}: \"{path}\" is a link or a directory in the volume; refusing to write through it");
        }

        var temp = Path.Combine(directory, $".{parts[^1]}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllBytes(temp, content);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(temp, (UnixFileMode)mode);
            }

            File.Move(temp, target, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Creates (or checks) the directories <paramref name="parts"/> under <paramref name="root"/>, refusing links.</summary>
    public static string EnsureDirectory(string root, IEnumerable<string> parts, string what)
    {
        var current = root;
        foreach (var part in parts)
        {
            current = Path.Combine(current, part);
            var info = new DirectoryInfo(current);
            if (info.LinkTarget is not null || new FileInfo(current).LinkTarget is not null)
            {
                throw new PodConfigException($"{what}: \"{part}\" is a symbolic link in the volume; refusing to follow it");
            }

            if (File.Exists(current))
            {
                throw new PodConfigException($"{what}: \"{part}\" is a file, not a directory");
            }

            Directory.CreateDirectory(current);
        }

        return current;
    }

    /// <summary>Parses a Kubernetes mode (0..0777); a value outside that is refused.</summary>
    public static int Mode(int? mode, int fallback, string what) =>
        mode switch
        {
            null => fallback,
            >= 0 and <= 511 => mode.Value,
            _ => throw new PodConfigException($"{what}: mode {mode} must be between 0 and 0777 (511)"),
        };
}
