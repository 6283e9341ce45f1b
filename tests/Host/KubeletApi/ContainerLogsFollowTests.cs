using System.Text;
using Krustlet.Stages.Run;

namespace Krustlet.Host.Tests.KubeletApi;

/// <summary><c>follow=true</c>: lines arrive as the real <see cref="CriLogWriter"/> writes them, until the run ends.</summary>
[TestClass]
public sealed class ContainerLogsFollowTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Follow_streams_each_line_as_it_is_written_across_rotation_and_ends_when_the_run_ends()
    {
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken);
        var pod = TestPods.Pod("web", "uid-web", ["main"]);
        host.Pods.Set(pod);
        var log = host.Writer(pod, "main", 0, TimeProvider.System, new LogRotationOptions(MaxSizeBytes: 120, MaxFiles: 3));
        log.Write(LogStream.Stdout, "before the client came\n"u8);
        using var client = host.Authorized();
        using var response = await client.GetAsync(new Uri("/containerLogs/default/web/main?follow=true", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead, TestContext.CancellationToken);
        using var lines = new StreamReader(await response.Content.ReadAsStreamAsync(TestContext.CancellationToken));

        Assert.AreEqual("before the client came", await lines.ReadLineAsync(TestContext.CancellationToken));
        for (var i = 0; i < 8; i++)
        {
            // Each line is read back before the next is written: the gate is the line itself.
            log.Write(i % 3 == 0 ? LogStream.Stderr : LogStream.Stdout, Encoding.ASCII.GetBytes($"written while following {i}\n"));
            Assert.AreEqual($"written while following {i}", await lines.ReadLineAsync(TestContext.CancellationToken));
        }

        Assert.IsTrue(File.Exists(Path.Combine(host.ContainerLogDirectory(pod, "main"), "0.log.2")), "the followed file was rotated (twice) meanwhile");
        log.Write(LogStream.Stdout, "last words"u8);
        log.Dispose(); // the run ends: what had no newline is written as a line
        host.Pods.Set(TestPods.Pod("web", "uid-web", ["main"], _ => TestPods.Terminated));

        Assert.AreEqual("last words", await lines.ReadLineAsync(TestContext.CancellationToken));
        Assert.IsNull(await lines.ReadLineAsync(TestContext.CancellationToken), "the stream ends with the run");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Follow_ends_when_the_container_restarts_or_the_pod_goes_away()
    {
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken);
        var pod = TestPods.Pod("web", "uid-web", ["main"]);
        host.Pods.Set(pod);
        using (var first = host.Writer(pod, "main", 0, TimeProvider.System))
        {
            first.Write(LogStream.Stdout, "first run\n"u8);
        }

        using var client = host.Authorized();
        using (var response = await client.GetAsync(new Uri("/containerLogs/default/web/main?follow=true", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead, TestContext.CancellationToken))
        using (var lines = new StreamReader(await response.Content.ReadAsStreamAsync(TestContext.CancellationToken)))
        {
            Assert.AreEqual("first run", await lines.ReadLineAsync(TestContext.CancellationToken));
            using var second = host.Writer(pod, "main", 1, TimeProvider.System); // the status still says running: the new file alone ends it
            Assert.IsNull(await lines.ReadLineAsync(TestContext.CancellationToken));
        }

        using (var response = await client.GetAsync(new Uri("/containerLogs/default/web/main?follow=true&tailLines=0", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead, TestContext.CancellationToken))
        using (var lines = new StreamReader(await response.Content.ReadAsStreamAsync(TestContext.CancellationToken)))
        {
            using var second = host.Writer(pod, "main", 1, TimeProvider.System);
            second.Write(LogStream.Stdout, "second run\n"u8);
            Assert.AreEqual("second run", await lines.ReadLineAsync(TestContext.CancellationToken));
            host.Pods.Set();
            Assert.IsNull(await lines.ReadLineAsync(TestContext.CancellationToken), "the pod is gone");
        }
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Stopping_the_server_ends_a_follow_in_progress()
    {
        var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken);
        var pod = TestPods.Pod("web", "uid-web", ["main"]);
        host.Pods.Set(pod);
        var log = host.Writer(pod, "main", 0, TimeProvider.System);
        log.Write(LogStream.Stdout, "running\n"u8);
        using var client = host.Authorized();
        using var response = await client.GetAsync(new Uri("/containerLogs/default/web/main?follow=1", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead, TestContext.CancellationToken);
        using var lines = new StreamReader(await response.Content.ReadAsStreamAsync(TestContext.CancellationToken));
        Assert.AreEqual("running", await lines.ReadLineAsync(TestContext.CancellationToken));

        await host.Server.StopAsync(TestContext.CancellationToken);

        Assert.IsNull(await lines.ReadLineAsync(TestContext.CancellationToken));
        log.Dispose();
        await host.DisposeAsync();
    }
}
