using System.Text;
using Krustlet.Stages.Run;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Stages.Tests.Run;

[TestClass]
public sealed class CriLogWriterTests
{
    private string _dir = null!;

    [TestInitialize]
    public void CreateDir() => _dir = Directory.CreateTempSubdirectory("krustlet-log-").FullName;

    [TestCleanup]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private static readonly DateTimeOffset Noon = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    [TestMethod]
    public void A_log_closed_until_the_next_write_holds_no_descriptor_and_keeps_the_unfinished_line()
    {
        var path = Path.Combine(_dir, "0.log");
        using (var log = new CriLogWriter(path, LogRotationOptions.Default, new FakeTimeProvider(Noon)))
        {
            log.Write(LogStream.Stdout, "one\ntw"u8);
            var open = OpenDescriptorsOn(path);
            log.CloseUntilNextWrite();
            Assert.AreEqual(open - 1, OpenDescriptorsOn(path), "the file is closed while the guest sleeps");
            log.Write(LogStream.Stdout, "o\n"u8);
        }

        CollectionAssert.AreEqual(
            new[] { "2026-11-26T12:00:00.000000000Z stdout F one", "2026-11-26T12:00:00.000000000Z stdout F two" },
            File.ReadAllLines(path));
    }

    private static int OpenDescriptorsOn(string path) =>
        new DirectoryInfo("/proc/self/fd").GetFileSystemInfos().Count(fd => fd.LinkTarget == path);

    [TestMethod]
    public void Lines_are_split_on_newlines_and_a_write_may_span_several_calls()
    {
        var path = Path.Combine(_dir, "0.log");
        using (var log = new CriLogWriter(path, LogRotationOptions.Default, new FakeTimeProvider(Noon)))
        {
            log.Write(LogStream.Stdout, "hel"u8);
            log.Write(LogStream.Stdout, "lo\nwor"u8);
            log.Write(LogStream.Stderr, "oops\n"u8);
            log.Write(LogStream.Stdout, "ld"u8);
        }

        CollectionAssert.AreEqual(
            new[]
            {
                "2026-11-26T12:00:00.000000000Z stdout F hello",
                "2026-11-26T12:00:00.000000000Z stderr F oops",
                "2026-11-26T12:00:00.000000000Z stdout F world",
            },
            File.ReadAllLines(path));
    }

    [TestMethod]
    public void Disposing_twice_completes_the_log_once_and_does_not_throw()
    {
        var path = Path.Combine(_dir, "0.log");
        var log = new CriLogWriter(path, LogRotationOptions.Default, new FakeTimeProvider(Noon));
        log.Write(LogStream.Stdout, "no newline"u8);
        log.Dispose();
        log.Dispose();
        Assert.HasCount(1, File.ReadAllLines(path), "the unfinished line is written once");
    }

    [TestMethod]
    public void A_very_long_line_is_written_as_partial_entries_then_a_full_one()
    {
        var path = Path.Combine(_dir, "0.log");
        using (var log = new CriLogWriter(path, LogRotationOptions.Default, new FakeTimeProvider(Noon)))
        {
            log.Write(LogStream.Stdout, Encoding.ASCII.GetBytes(new string('x', CriLogWriter.MaxLineBytes + 10) + "\n"));
        }

        var entries = File.ReadAllLines(path).Select(l => l.Split(' ', 4)).ToArray();
        CollectionAssert.AreEqual(new[] { "P", "F" }, entries.Select(e => e[2]).ToArray());
        Assert.AreEqual(CriLogWriter.MaxLineBytes, entries[0][3].Length);
        Assert.AreEqual(10, entries[1][3].Length);
    }

    [TestMethod]
    public void Logs_rotate_at_the_size_and_keep_at_most_the_file_count()
    {
        var path = Path.Combine(_dir, "0.log");
        var line = "2026-11-26T12:00:00.000000000Z stdout F ".Length + 10 + 1; // one entry of a 10-character line
        using (var log = new CriLogWriter(path, new LogRotationOptions(MaxSizeBytes: line * 2, MaxFiles: 3), new FakeTimeProvider(Noon)))
        {
            for (var i = 0; i < 9; i++)
            {
                log.Write(LogStream.Stdout, Encoding.ASCII.GetBytes($"line-{i:00000}\n"));
            }
        }

        CollectionAssert.AreEquivalent(new[] { "0.log", "0.log.1", "0.log.2" }, Directory.GetFiles(_dir).Select(Path.GetFileName).ToArray());
        Assert.IsTrue(File.ReadAllLines(path).Single().EndsWith("line-00008", StringComparison.Ordinal));
        CollectionAssert.AreEqual(new[] { "line-00006", "line-00007" }, File.ReadAllLines(path + ".1").Select(l => l.Split(' ')[3]).ToArray());
        CollectionAssert.AreEqual(new[] { "line-00004", "line-00005" }, File.ReadAllLines(path + ".2").Select(l => l.Split(' ')[3]).ToArray());
    }
}
