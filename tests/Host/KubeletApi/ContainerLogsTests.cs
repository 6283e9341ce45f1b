using System.Net;
using System.Text;
using Krustlet.Stages.Run;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Host.Tests.KubeletApi;

/// <summary><c>GET /containerLogs/…</c> without follow, over logs written by the real <see cref="CriLogWriter"/>.</summary>
[TestClass]
public sealed class ContainerLogsTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Logs_are_the_current_run_text_with_tail_timestamps_since_and_limit_applied()
    {
        var clock = new FakeTimeProvider(Start);
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken, clock);
        var pod = TestPods.Pod("web", "uid-web", ["main"]);
        host.Pods.Set(pod);
        using (var log = host.Writer(pod, "main", 0, clock))
        {
            for (var i = 1; i <= 5; i++)
            {
                log.Write(i % 2 == 0 ? LogStream.Stderr : LogStream.Stdout, Encoding.UTF8.GetBytes($"line {i} ünï\n"));
                clock.Advance(TimeSpan.FromSeconds(10));
            }
        }

        using var client = host.Authorized();
        Assert.AreEqual("line 1 ünï\nline 2 ünï\nline 3 ünï\nline 4 ünï\nline 5 ünï\n", await LogsAsync(client, "default/web/main"));
        Assert.AreEqual("line 4 ünï\nline 5 ünï\n", await LogsAsync(client, "default/web/main?tailLines=2"));
        Assert.AreEqual(string.Empty, await LogsAsync(client, "default/web/main?tailLines=0"));
        Assert.AreEqual(
            $"{CriLogWriter.Timestamp(Start.AddSeconds(30))} line 4 ünï\n{CriLogWriter.Timestamp(Start.AddSeconds(40))} line 5 ünï\n",
            await LogsAsync(client, "default/web/main?tailLines=2&timestamps=true"));

        // The clock is at Start+50s: the last 25 seconds hold lines 4 (at +30s) and 5 (at +40s).
        Assert.AreEqual("line 4 ünï\nline 5 ünï\n", await LogsAsync(client, "default/web/main?sinceSeconds=25"));
        Assert.AreEqual("line 3 ünï\nline 4 ünï\nline 5 ünï\n", await LogsAsync(client, $"default/web/main?sinceTime={Uri.EscapeDataString("2026-03-01T12:00:20Z")}"));
        Assert.AreEqual("line 4 ünï\n", await LogsAsync(client, "default/web/main?sinceSeconds=25&tailLines=5&limitBytes=13"), "limitBytes counts bytes (ü and ï are two each)");
        Assert.AreEqual("line 1", await LogsAsync(client, "default/web/main?limitBytes=6"));
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Partial_entries_are_joined_into_their_line_per_stream()
    {
        var clock = new FakeTimeProvider(Start);
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken, clock);
        var pod = TestPods.Pod("web", "uid-web", ["main"]);
        host.Pods.Set(pod);
        var longLine = new string('x', CriLogWriter.MaxLineBytes * 2 + 100);
        using (var log = host.Writer(pod, "main", 0, clock))
        {
            log.Write(LogStream.Stdout, Encoding.ASCII.GetBytes(longLine[..CriLogWriter.MaxLineBytes]));
            clock.Advance(TimeSpan.FromSeconds(1));
            log.Write(LogStream.Stderr, "an error in between\n"u8);
            log.Write(LogStream.Stdout, Encoding.ASCII.GetBytes(longLine[CriLogWriter.MaxLineBytes..] + "\nshort\n"));
        }

        var file = File.ReadAllText(Path.Combine(host.ContainerLogDirectory(pod, "main"), "0.log"));
        Assert.AreEqual(2, file.Split(" stdout P ").Length - 1, "the writer split the long line into partial entries");

        // A line is shown when it is complete, so the stderr line written meanwhile comes first.
        using var client = host.Authorized();
        Assert.AreEqual($"an error in between\n{longLine}\nshort\n", await LogsAsync(client, "default/web/main"));
        Assert.AreEqual(
            $"{CriLogWriter.Timestamp(Start.AddSeconds(1))} an error in between\n{CriLogWriter.Timestamp(Start)} {longLine}\n{CriLogWriter.Timestamp(Start.AddSeconds(1))} short\n",
            await LogsAsync(client, "default/web/main?timestamps=true&tailLines=3"),
            "a joined line carries the time of its first entry");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Rotated_files_are_read_oldest_first_and_previous_reads_the_run_before()
    {
        var clock = new FakeTimeProvider(Start);
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken, clock);
        var pod = TestPods.Pod("web", "uid-web", ["main"], restartCount: 1);
        host.Pods.Set(pod);
        var rotation = new LogRotationOptions(MaxSizeBytes: 200, MaxFiles: 5);
        var expected = new StringBuilder();
        using (var log = host.Writer(pod, "main", 0, clock, rotation))
        {
            for (var i = 0; i < 12; i++)
            {
                log.Write(LogStream.Stdout, Encoding.ASCII.GetBytes($"first run line {i:D2}\n"));
            }
        }

        using (var log = host.Writer(pod, "main", 1, clock, rotation))
        {
            for (var i = 0; i < 12; i++)
            {
                log.Write(LogStream.Stdout, Encoding.ASCII.GetBytes($"second run line {i:D2}\n"));
                expected.Append(System.Globalization.CultureInfo.InvariantCulture, $"second run line {i:D2}\n");
            }
        }

        var files = Directory.GetFiles(host.ContainerLogDirectory(pod, "main")).Select(Path.GetFileName).Order().ToArray();
        CollectionAssert.IsSubsetOf(new[] { "1.log", "1.log.1", "1.log.2" }, files, "the writer rotated the run's log");
        using var client = host.Authorized();

        Assert.AreEqual(expected.ToString(), await LogsAsync(client, "default/web/main"));
        var previous = await LogsAsync(client, "default/web/main?previous=true");
        StringAssert.StartsWith(previous, "first run line 00\n");
        StringAssert.EndsWith(previous, "first run line 11\n");
        Assert.AreEqual(12, previous.Split('\n').Length - 1);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Unknown_pods_and_containers_are_404_and_bad_parameters_400_with_a_precise_message()
    {
        var clock = new FakeTimeProvider(Start);
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken, clock);
        var pod = TestPods.Pod("web", "uid-web", ["main", "sidecar"]);
        var waiting = TestPods.Pod("new", "uid-new", ["main"], _ => new k8s.Models.V1ContainerState { Waiting = new k8s.Models.V1ContainerStateWaiting { Reason = "ContainerCreating" } });
        host.Pods.Set(pod, waiting);
        using (var log = host.Writer(pod, "main", 0, clock))
        {
            log.Write(LogStream.Stdout, "only run\n"u8);
        }

        using var client = host.Authorized();
        await AssertErrorAsync(client, "default/nope/main", HttpStatusCode.NotFound, "pod \"default/nope\" not found on this node");
        await AssertErrorAsync(client, "other/web/main", HttpStatusCode.NotFound, "pod \"other/web\" not found on this node");
        await AssertErrorAsync(client, "default/web/db", HttpStatusCode.NotFound, "container \"db\" not found in pod \"default/web\"; its containers are: main, sidecar");
        await AssertErrorAsync(client, "default/web/main?previous=true", HttpStatusCode.BadRequest, "previous terminated container \"main\" in pod \"default/web\" not found");
        await AssertErrorAsync(client, "default/new/main", HttpStatusCode.BadRequest, "container \"main\" in pod \"default/new\" has no log yet: it is waiting to start: ContainerCreating");
        await AssertErrorAsync(client, "default/web/main?tailLines=-1", HttpStatusCode.BadRequest, "tailLines: -1 must be at least 0");
        await AssertErrorAsync(client, "default/web/main?tailLines=ten", HttpStatusCode.BadRequest, "tailLines: \"ten\" is not an integer");
        await AssertErrorAsync(client, "default/web/main?limitBytes=0", HttpStatusCode.BadRequest, "limitBytes: 0 must be at least 1");
        await AssertErrorAsync(client, "default/web/main?follow=maybe", HttpStatusCode.BadRequest, "follow: \"maybe\" is not a boolean (true or false)");
        await AssertErrorAsync(client, "default/web/main?sinceTime=yesterday", HttpStatusCode.BadRequest, "sinceTime: \"yesterday\" is not an RFC 3339 time (like 2026-01-02T15:04:05Z)");
        await AssertErrorAsync(client, "default/web/main?sinceSeconds=5&sinceTime=2026-01-02T15:04:05Z", HttpStatusCode.BadRequest, "at most one of sinceTime or sinceSeconds may be given");
        await AssertErrorAsync(client, "default/web/main?tailLines=1&tailLines=2&timestamps=yes", HttpStatusCode.BadRequest, "timestamps: \"yes\" is not a boolean (true or false); tailLines: given 2 times, expected once");
        Assert.AreEqual("only run\n", await LogsAsync(client, "default/web/main?follow=false&timestamps=0&previous=FALSE"));
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task No_name_in_a_pod_or_the_url_reads_outside_the_log_root()
    {
        var clock = new FakeTimeProvider(Start);
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken, clock);
        var outside = Directory.CreateTempSubdirectory("krustlet-outside-").FullName;
        Directory.CreateDirectory(Path.Combine(outside, "main"));
        await File.WriteAllTextAsync(Path.Combine(outside, "main", "0.log"), "2026-03-01T12:00:00.000000000Z stdout F secret\n", TestContext.CancellationToken);

        // A pod the node was sent with a container name that leads out (admission refused it; the node still lists it),
        // and a valid pod whose log directory someone replaced with a link to elsewhere.
        var escaping = TestPods.Pod("escaping", "uid-escaping", [".."]);
        var linked = TestPods.Pod("linked", "uid-linked", ["main"]);
        host.Pods.Set(escaping, linked);
        Directory.CreateDirectory(host.LogRoot);
        Directory.CreateSymbolicLink(Path.Combine(host.LogRoot, "default_linked_uid-linked"), outside);

        using var client = host.Authorized();
        await AssertErrorAsync(client, "default/linked/main", HttpStatusCode.BadRequest, "container \"main\" in pod \"default/linked\" has no log: its names are not valid");
        foreach (var path in new[] { "default/escaping/%2e%2e", "default/escaping/%2E%2E", "%2e%2e/%2e%2e/main", "default/%2e%2e/main", "default/linked/%2e%2e", "default%2f..%2f../linked/main" })
        {
            using var response = await client.GetAsync(new Uri($"/containerLogs/{path}", UriKind.Relative), TestContext.CancellationToken);
            var body = await response.Content.ReadAsStringAsync(TestContext.CancellationToken);
            Assert.AreNotEqual(HttpStatusCode.OK, response.StatusCode, path);
            Assert.DoesNotContain("secret", body, path);
        }

        Directory.Delete(outside, recursive: true);
    }

    private async Task<string> LogsAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(new Uri($"/containerLogs/{path}", UriKind.Relative), TestContext.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.OK, response.StatusCode, body);
        return body;
    }

    private async Task AssertErrorAsync(HttpClient client, string path, HttpStatusCode status, string message)
    {
        using var response = await client.GetAsync(new Uri($"/containerLogs/{path}", UriKind.Relative), TestContext.CancellationToken);
        Assert.AreEqual(status, response.StatusCode, path);
        Assert.AreEqual(message + "\n", await response.Content.ReadAsStringAsync(TestContext.CancellationToken), path);
    }
}
