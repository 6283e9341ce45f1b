namespace Krustlet.Tests.Shared;

/// <summary>The committed examples (examples/ at the repository root): sources, pod manifests and the OCI layout.</summary>
internal static class ExampleFiles
{
    /// <summary>The examples directory, found by walking up from the test binaries to the solution.</summary>
    public static string Root { get; } = FindRoot();

    public static string Layout => Path.Combine(Root, "images");

    public static string Pods => Path.Combine(Root, "pods");

    public static string Sources => Path.Combine(Root, "src");

    /// <summary>Copies the committed layout to a fresh directory a test may damage; returns it.</summary>
    public static string CopyLayout()
    {
        var copy = Directory.CreateTempSubdirectory("krustlet-layout-").FullName;
        foreach (var file in Directory.EnumerateFiles(Layout, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(copy, Path.GetRelativePath(Layout, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        return copy;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Krustlet.sln")))
            {
                return Path.Combine(dir.FullName, "examples");
            }
        }

        throw new DirectoryNotFoundException($"no Krustlet.sln above {AppContext.BaseDirectory}");
    }
}
