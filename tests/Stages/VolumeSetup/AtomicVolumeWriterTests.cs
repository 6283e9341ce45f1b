using System.Text;
using Krustlet.Stages.VolumeSetup;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Stages.Tests.VolumeSetup;

/// <summary>The kubelet's AtomicWriter layout: a timestamped payload, <c>..data</c> swapped by rename, keys as relative links.</summary>
[TestClass]
public sealed class AtomicVolumeWriterTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 3, 18, 45, 7, TimeSpan.Zero));
    private string _root = null!;

    [TestInitialize]
    public void Create() => _root = Directory.CreateTempSubdirectory("krustlet-atomic-").FullName;

    [TestCleanup]
    public void Remove() => Directory.Delete(_root, recursive: true);

    private static VolumeFile File(string path, string content, int mode = 420) => new(path, Encoding.UTF8.GetBytes(content), mode);

    private string Volume => Path.Combine(_root, "v");

    [TestMethod]
    public void A_first_write_makes_the_kubelets_layout()
    {
        Assert.IsTrue(AtomicVolumeWriter.Write(Volume, [File("greeting", "hello"), File("conf/colour", "blue", 256)], _time, "volume v"));

        var payload = new FileInfo(Path.Combine(Volume, "..data")).LinkTarget!;
        StringAssert.Matches(payload, new System.Text.RegularExpressions.Regex(@"^\.\.2026_12_03_18_45_07\.\d{9}$"));
        Assert.AreEqual(payload, AtomicVolumeWriter.CurrentPayloadDirectory(Volume));
        Assert.AreEqual("..data/greeting", new FileInfo(Path.Combine(Volume, "greeting")).LinkTarget, "relative, so it stays inside a guest's preopen");
        Assert.AreEqual("..data/conf", new FileInfo(Path.Combine(Volume, "conf")).LinkTarget, "a nested path's top directory is the link");
        Assert.AreEqual("hello", System.IO.File.ReadAllText(Path.Combine(Volume, "greeting")));
        Assert.AreEqual("blue", System.IO.File.ReadAllText(Path.Combine(Volume, "conf", "colour")));
        Assert.AreEqual(UnixFileMode.UserRead, System.IO.File.GetUnixFileMode(Path.Combine(Volume, payload, "conf", "colour")));
        CollectionAssert.AreEquivalent(new[] { "..data", payload, "conf", "greeting" }, Directory.GetFileSystemEntries(Volume).Select(Path.GetFileName).ToArray());
    }

    [TestMethod]
    public void The_same_content_writes_nothing()
    {
        AtomicVolumeWriter.Write(Volume, [File("greeting", "hello")], _time, "volume v");
        var payload = AtomicVolumeWriter.CurrentPayloadDirectory(Volume);
        _time.Advance(TimeSpan.FromMinutes(1));

        Assert.IsFalse(AtomicVolumeWriter.Write(Volume, [File("greeting", "hello")], _time, "volume v"));
        Assert.AreEqual(payload, AtomicVolumeWriter.CurrentPayloadDirectory(Volume));
        Assert.IsTrue(AtomicVolumeWriter.Write(Volume, [File("greeting", "hello", 256)], _time, "volume v"), "a mode change is a change");
    }

    [TestMethod]
    public void An_update_swaps_the_payload_removes_deleted_keys_and_the_old_payload()
    {
        AtomicVolumeWriter.Write(Volume, [File("greeting", "hello"), File("colour", "blue")], _time, "volume v");
        var first = AtomicVolumeWriter.CurrentPayloadDirectory(Volume)!;
        _time.Advance(TimeSpan.FromMinutes(1));

        Assert.IsTrue(AtomicVolumeWriter.Write(Volume, [File("greeting", "hola"), File("size", "xl")], _time, "volume v"));

        var second = AtomicVolumeWriter.CurrentPayloadDirectory(Volume)!;
        StringAssert.StartsWith(second, "..2026_12_03_18_46_07.");
        Assert.IsFalse(Directory.Exists(Path.Combine(Volume, first)));
        Assert.AreEqual("hola", System.IO.File.ReadAllText(Path.Combine(Volume, "greeting")));
        Assert.AreEqual("xl", System.IO.File.ReadAllText(Path.Combine(Volume, "size")));
        Assert.IsNull(new FileInfo(Path.Combine(Volume, "colour")).LinkTarget, "the deleted key's link is gone");
        Assert.IsFalse(System.IO.File.Exists(Path.Combine(Volume, "colour")));

        Assert.IsTrue(AtomicVolumeWriter.Write(Volume, [], _time, "volume v"), "an optional source that disappeared: no keys");
        CollectionAssert.AreEquivalent(new[] { "..data", AtomicVolumeWriter.CurrentPayloadDirectory(Volume) }, Directory.GetFileSystemEntries(Volume).Select(Path.GetFileName).ToArray());
    }

    [TestMethod]
    public void A_volume_written_in_place_by_an_older_agent_is_replaced_by_the_layout()
    {
        Directory.CreateDirectory(Path.Combine(Volume, "conf"));
        System.IO.File.WriteAllText(Path.Combine(Volume, "conf", "old"), "stale");
        System.IO.File.WriteAllText(Path.Combine(Volume, "greeting"), "stale");

        AtomicVolumeWriter.Write(Volume, [File("greeting", "hello")], _time, "volume v");

        Assert.AreEqual("..data/greeting", new FileInfo(Path.Combine(Volume, "greeting")).LinkTarget);
        Assert.IsFalse(Directory.Exists(Path.Combine(Volume, "conf")));
    }

    [TestMethod]
    public void A_link_the_agent_did_not_make_is_refused_and_the_current_payload_kept()
    {
        AtomicVolumeWriter.Write(Volume, [File("greeting", "hello")], _time, "volume v");
        var payload = AtomicVolumeWriter.CurrentPayloadDirectory(Volume);
        System.IO.File.CreateSymbolicLink(Path.Combine(Volume, "colour"), "/etc/passwd");

        var ex = Assert.ThrowsExactly<PodConfigException>(() => AtomicVolumeWriter.Write(Volume, [File("greeting", "hola"), File("colour", "x")], _time, "volume v"));

        StringAssert.Contains(ex.Message, "\"colour\" is a link the agent did not make");
        Assert.AreEqual(payload, AtomicVolumeWriter.CurrentPayloadDirectory(Volume));
        Assert.AreEqual("hello", System.IO.File.ReadAllText(Path.Combine(Volume, "greeting")));
        Assert.HasCount(4, Directory.GetFileSystemEntries(Volume), "the new payload was removed: ..data, the payload, greeting and the foreign link only");
    }
}
