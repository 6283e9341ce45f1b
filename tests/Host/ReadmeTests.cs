namespace Krustlet.Host.Tests;

/// <summary>The README states every setting with the default the code uses.</summary>
[TestClass]
public sealed class ReadmeTests
{
    private static string Readme()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Krustlet.sln")))
            {
                return File.ReadAllText(Path.Combine(dir.FullName, "README.md"));
            }
        }

        throw new InvalidOperationException("README.md not found above the test's directory.");
    }

    [TestMethod]
    public void The_configuration_reference_lists_every_setting_with_its_default()
    {
        var readme = Readme().ReplaceLineEndings("\n");
        var reference = SettingsCommand.Reference();
        StringAssert.Contains(readme, reference, "the README's table must be exactly what `krustlet settings` prints");
        var rows = readme.Split('\n').Count(l => l.StartsWith("| `", StringComparison.Ordinal) && l.Contains("| `KRUSTLET_", StringComparison.Ordinal));
        Assert.AreEqual(Krustlet.Host.Configuration.SettingsCatalog.All.Count, rows, "one row per setting, no stale rows");
    }
}
