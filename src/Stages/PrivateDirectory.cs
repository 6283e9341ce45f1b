namespace Krustlet.Stages;

/// <summary>Directories only the agent's user may enter (pods' volumes, the compile cache).</summary>
public static class PrivateDirectory
{
    /// <summary>Creates <paramref name="path"/> (and its parents) with mode 0700 where the platform has modes.</summary>
    public static void Create(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }
}
