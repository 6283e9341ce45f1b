using Krustlet.Stages.VolumeSetup;

namespace Krustlet.Stages.Tests.VolumeSetup;

[TestClass]
public sealed class VolumeFilesTests
{
    private string _root = null!;

    [TestInitialize]
    public void Create() => _root = Directory.CreateTempSubdirectory("krustlet-vol-").FullName;

    [TestCleanup]
    public void Remove() => Directory.Delete(_root, recursive: true);

    [TestMethod]
    [DataRow("../escape", "must not contain '..'")]
    [DataRow("a/../../escape", "must not contain '..'")]
    [DataRow("/etc/passwd", "must be a relative path")]
    [DataRow("a//b", "has an empty or '.' element")]
    [DataRow("./a", "has an empty or '.' element")]
    [DataRow("", "the path is empty")]
    public void Crafted_paths_are_refused(string path, string message)
    {
        var ex = Assert.ThrowsExactly<PodConfigException>(() => VolumeFiles.Write(_root, path, [1], 420, "volume v"));

        StringAssert.Contains(ex.Message, message);
        Assert.IsEmpty(Directory.GetFileSystemEntries(_root));
    }

    [TestMethod]
    public void A_symlink_in_the_volume_is_never_followed()
    {
        var outside = Directory.CreateTempSubdirectory("krustlet-outside-").FullName;
        try
        {
            Directory.CreateSymbolicLink(Path.Combine(_root, "dir"), outside);
            File.CreateSymbolicLink(Path.Combine(_root, "file"), Path.Combine(outside, "target"));

            var throughDirectory = Assert.ThrowsExactly<PodConfigException>(() => VolumeFiles.Write(_root, "dir/x", [1], 420, "volume v"));
            var throughFile = Assert.ThrowsExactly<PodConfigException>(() => VolumeFiles.Write(_root, "file", [1], 420, "volume v"));

            StringAssert.Contains(throughDirectory.Message, "\"dir\" is a symbolic link in the volume; refusing to follow it");
            StringAssert.Contains(throughFile.Message, "\"file\" is a link or a directory in the volume");
            Assert.IsEmpty(Directory.GetFileSystemEntries(outside), "nothing was written outside the volume");
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [TestMethod]
    public void Files_get_their_mode_and_nested_paths_their_directories()
    {
        VolumeFiles.Write(_root, "nested/dir/key", "v"u8.ToArray(), 0b100_000_000, "volume v");

        var path = Path.Combine(_root, "nested", "dir", "key");
        Assert.AreEqual("v", File.ReadAllText(path));
        Assert.AreEqual(UnixFileMode.UserRead, File.GetUnixFileMode(path));
    }
}
