using Krustlet.Stages.Run;

namespace Krustlet.Stages.Tests;

/// <summary>Paths built from names stay under their root: no separator, no '..', no NUL, no link already on disk.</summary>
[TestClass]
public sealed class DataPathTests
{
    private string _root = null!;
    private string _outside = null!;

    [TestInitialize]
    public void Create()
    {
        _root = Directory.CreateTempSubdirectory("krustlet-datapath-").FullName;
        _outside = Directory.CreateTempSubdirectory("krustlet-outside-").FullName;
    }

    [TestCleanup]
    public void Remove()
    {
        Directory.Delete(_root, recursive: true);
        Directory.Delete(_outside, recursive: true);
    }

    [TestMethod]
    public void Plain_names_make_a_path_under_the_root() =>
        Assert.AreEqual(Path.Combine(_root, "pods", "uid-1", "volumes", "data"), DataPath.Under(_root, "pods", "uid-1", "volumes", "data"));

    [TestMethod]
    [DataRow("..")]
    [DataRow(".")]
    [DataRow("")]
    [DataRow("a/b")]
    [DataRow("../../etc")]
    [DataRow("/etc")]
    [DataRow("a\\b")]
    [DataRow("a\0b")]
    [DataRow("line\nbreak")]
    public void A_segment_that_is_not_a_plain_name_is_refused(string segment)
    {
        Assert.ThrowsExactly<UnsafePathException>(() => DataPath.Under(_root, "logs", segment));
        Assert.IsNull(DataPath.TryUnder(_root, "logs", segment));
    }

    [TestMethod]
    public void Percent_encoding_is_a_literal_name_not_a_way_up() =>
        Assert.AreEqual(Path.Combine(_root, "%2e%2e"), DataPath.Under(_root, "%2e%2e"), "nothing here decodes it: it stays a file name under the root");

    [TestMethod]
    public void A_symbolic_link_already_on_disk_is_not_followed()
    {
        Directory.CreateSymbolicLink(Path.Combine(_root, "default_web_uid"), _outside);
        var refused = Assert.ThrowsExactly<UnsafePathException>(() => DataPath.Under(_root, "default_web_uid", "main"));
        StringAssert.Contains(refused.Message, "is a symbolic link");

        Directory.CreateDirectory(Path.Combine(_root, "pods", "uid"));
        File.CreateSymbolicLink(Path.Combine(_root, "pods", "uid", "state.json"), Path.Combine(_outside, "state.json"));
        Assert.ThrowsExactly<UnsafePathException>(() => DataPath.Under(_root, "pods", "uid", "state.json"), "a link as the last segment too");
        Assert.IsEmpty(Directory.GetFileSystemEntries(_outside));
    }

    [TestMethod]
    public void The_pod_log_layout_refuses_names_that_would_leave_the_log_root()
    {
        Assert.ThrowsExactly<UnsafePathException>(() => PodLogLayout.RunLog(_root, "default", "../../../../tmp/x/escaped", "uid", "main", 0));
        Assert.ThrowsExactly<UnsafePathException>(() => PodLogLayout.RunLog(_root, "default", "web", "uid", "../../../../../tmp/x/escapedc", 0));
        Assert.ThrowsExactly<UnsafePathException>(() => PodLogLayout.ContainerDirectory(_root, "..", "", "uid", "main"));
        Assert.AreEqual(Path.Combine(_root, "default_web_uid", "main", "3.log"), PodLogLayout.RunLog(_root, "default", "web", "uid", "main", 3));
    }
}
