using k8s.Models;
using Krustlet.Host.Standalone;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Host.Tests.Standalone;

/// <summary>The pod table: kubectl's STATUS rules, ages, and the live redraw.</summary>
[TestClass]
public sealed class PodTableTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    public TestContext TestContext { get; set; } = null!;

    private static V1Pod Pod(string name, string phase, TimeSpan age, V1ContainerStatus[]? containers = null, V1ContainerStatus[]? inits = null, int specContainers = 1, bool deleting = false) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default", CreationTimestamp = (Now - age).UtcDateTime, DeletionTimestamp = deleting ? Now.UtcDateTime : null },
        Spec = new V1PodSpec
        {
            Containers = [.. Enumerable.Range(0, specContainers).Select(i => new V1Container { Name = $"c{i}", Image = "i" })],
            InitContainers = inits is null ? null : [.. inits.Select(s => new V1Container { Name = s.Name, Image = "i" })],
        },
        Status = new V1PodStatus { Phase = phase, ContainerStatuses = containers, InitContainerStatuses = inits },
    };

    private static V1ContainerStatus Running(int restarts = 0, TimeSpan? lastFinishedAgo = null) => new()
    {
        Name = "c0",
        Ready = true,
        RestartCount = restarts,
        State = new V1ContainerState { Running = new V1ContainerStateRunning() },
        LastState = lastFinishedAgo is { } ago ? new V1ContainerState { Terminated = new V1ContainerStateTerminated { ExitCode = 1, FinishedAt = (Now - ago).UtcDateTime } } : null,
    };

    private static V1ContainerStatus Waiting(string reason, int restarts = 0, TimeSpan? lastFinishedAgo = null) => new()
    {
        Name = "c0",
        RestartCount = restarts,
        State = new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = reason } },
        LastState = lastFinishedAgo is { } ago ? new V1ContainerState { Terminated = new V1ContainerStateTerminated { ExitCode = 1, FinishedAt = (Now - ago).UtcDateTime } } : null,
    };

    private static V1ContainerStatus Terminated(int exitCode, string? reason) => new()
    {
        Name = "c0",
        State = new V1ContainerState { Terminated = new V1ContainerStateTerminated { ExitCode = exitCode, Reason = reason } },
    };

    [TestMethod]
    public void Status_follows_kubectls_rules()
    {
        Assert.AreEqual("Running", PodTable.Status(Pod("p", "Running", TimeSpan.Zero, [Running()])));
        Assert.AreEqual("Completed", PodTable.Status(Pod("p", "Succeeded", TimeSpan.Zero, [Terminated(0, "Completed")])));
        Assert.AreEqual("Error", PodTable.Status(Pod("p", "Failed", TimeSpan.Zero, [Terminated(1, "Error")])));
        Assert.AreEqual("ExitCode:3", PodTable.Status(Pod("p", "Failed", TimeSpan.Zero, [Terminated(3, null)])));
        Assert.AreEqual("CrashLoopBackOff", PodTable.Status(Pod("p", "Running", TimeSpan.Zero, [Waiting("CrashLoopBackOff", 2)])));
        Assert.AreEqual("ContainerCreating", PodTable.Status(Pod("p", "Pending", TimeSpan.Zero, [Waiting("ContainerCreating")])));
        Assert.AreEqual("ErrImagePull", PodTable.Status(Pod("p", "Pending", TimeSpan.Zero, [Waiting("ErrImagePull")])));
        Assert.AreEqual("Pending", PodTable.Status(Pod("p", "Pending", TimeSpan.Zero)));
        Assert.AreEqual("Init:0/1", PodTable.Status(Pod("p", "Pending", TimeSpan.Zero, inits: [new V1ContainerStatus { Name = "init", State = new V1ContainerState { Running = new V1ContainerStateRunning() } }])));
        Assert.AreEqual("Init:Error", PodTable.Status(Pod("p", "Pending", TimeSpan.Zero, inits: [new V1ContainerStatus { Name = "init", State = new V1ContainerState { Terminated = new V1ContainerStateTerminated { ExitCode = 1, Reason = "Error" } } }])));
        Assert.AreEqual("Init:CrashLoopBackOff", PodTable.Status(Pod("p", "Pending", TimeSpan.Zero, inits: [new V1ContainerStatus { Name = "init", State = new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = "CrashLoopBackOff" } } }])));
        Assert.AreEqual("Terminating", PodTable.Status(Pod("p", "Running", TimeSpan.Zero, [Running()], deleting: true)));
        Assert.AreEqual("OutOfpods", PodTable.Status(new V1Pod { Metadata = new V1ObjectMeta { Name = "p" }, Spec = new V1PodSpec(), Status = new V1PodStatus { Phase = "Failed", Reason = "OutOfpods" } }));
    }

    [TestMethod]
    [DataRow(0, "0s")]
    [DataRow(5, "5s")]
    [DataRow(119, "119s")]
    [DataRow(125, "2m5s")]
    [DataRow(180, "3m")]
    [DataRow(60 * 45, "45m")]
    [DataRow(3600 * 2, "120m")]
    [DataRow(3600 * 3 + 60 * 20, "3h20m")]
    [DataRow(3600 * 10, "10h")]
    [DataRow(3600 * (72 + 4), "3d4h")]
    [DataRow(3600 * 24 * 30, "30d")]
    [DataRow(3600 * 24 * 740, "2y10d")]
    public void Ages_are_kubectls_human_durations(int seconds, string expected) =>
        Assert.AreEqual(expected, PodTable.HumanDuration(TimeSpan.FromSeconds(seconds)));

    [TestMethod]
    public void The_table_has_kubectls_columns_ready_counts_and_restarts_with_how_long_ago()
    {
        var pods = new[]
        {
            Pod("hello-demo", "Succeeded", TimeSpan.FromSeconds(5), [Terminated(0, "Completed")]),
            Pod("crashloop-demo", "Running", TimeSpan.FromMinutes(3), [Waiting("CrashLoopBackOff", 3, lastFinishedAgo: TimeSpan.FromSeconds(12))]),
            Pod("counter-demo", "Running", TimeSpan.FromHours(2), [Running(), Running()], specContainers: 2),
        };

        var table = PodTable.Render(pods, Now);
        var withNamespace = PodTable.Render(pods.Take(1), Now, showNamespace: true);

        Assert.AreEqual(
            """
            NAME             READY   STATUS             RESTARTS      AGE
            hello-demo       0/1     Completed          0             5s
            crashloop-demo   0/1     CrashLoopBackOff   3 (12s ago)   3m
            counter-demo     2/2     Running            0             120m

            """.ReplaceLineEndings("\n"),
            table);
        Assert.AreEqual("NAMESPACE   NAME         READY   STATUS      RESTARTS   AGE\ndefault     hello-demo   0/1     Completed   0          5s\n", withNamespace);
    }

    [TestMethod]
    [Timeout(10_000, CooperativeCancellation = true)]
    public async Task Off_a_terminal_the_table_is_printed_only_when_more_than_time_changed()
    {
        var time = new FakeTimeProvider(Now);
        var pods = new List<V1Pod> { Pod("a", "Running", TimeSpan.FromSeconds(1), [Running()]) };
        using var output = new StringWriter();
        var table = new LivePodTable(() => pods, output, isTerminal: false, time);
        var ct = TestContext.CancellationToken;

        await table.DrawAsync(ct);
        time.Advance(TimeSpan.FromSeconds(30));
        await table.DrawAsync(ct);
        Assert.AreEqual(1, table.Draws, "only the age changed");

        pods[0] = Pod("a", "Running", TimeSpan.FromSeconds(31), [Waiting("CrashLoopBackOff", 1)]);
        await table.DrawAsync(ct);

        Assert.AreEqual(2, table.Draws);
        Assert.IsFalse(output.ToString().Contains('\u001b', StringComparison.Ordinal), "no escapes in logs");
        StringAssert.EndsWith(output.ToString(), "a      0/1     CrashLoopBackOff   1          61s\n\n");
    }

    [TestMethod]
    [Timeout(10_000, CooperativeCancellation = true)]
    public async Task On_a_terminal_the_table_is_redrawn_in_place_on_each_tick_and_refresh()
    {
        var time = new SignallingTimeProvider();
        time.SetUtcNow(Now);
        var pods = new List<V1Pod> { Pod("a", "Running", TimeSpan.FromSeconds(1), [Running()]) };
        var output = new SignallingWriter();
        var table = new LivePodTable(() => pods, output, isTerminal: true, time) { Interval = TimeSpan.FromSeconds(1) };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken);
        var timer = time.NextTimer;
        var first = output.NextFlush;
        var run = table.RunAsync(stop.Token);
        await timer;
        await first;

        var second = output.NextFlush;
        time.Advance(TimeSpan.FromSeconds(1));
        await second;
        pods.Add(Pod("b", "Pending", TimeSpan.Zero));
        var third = output.NextFlush;
        table.Refresh();
        await third;
        await stop.CancelAsync();
        await run;

        var text = output.ToString();
        StringAssert.StartsWith(text, "\rNAME   READY   STATUS    RESTARTS   AGE\u001b[K\n\ra      1/1     Running   0          1s\u001b[K\n\u001b[J");
        StringAssert.Contains(text, "\u001b[2A\rNAME   READY   STATUS    RESTARTS   AGE\u001b[K\n\ra      1/1     Running   0          2s\u001b[K\n\u001b[J", "the second draw goes back up over the first");
        StringAssert.EndsWith(text, "\u001b[2A\rNAME   READY   STATUS    RESTARTS   AGE\u001b[K\n\ra      1/1     Running   0          2s\u001b[K\n\rb      0/1     Pending   0          1s\u001b[K\n\u001b[J");
    }

    /// <summary>A string writer that tells the test when a draw was flushed.</summary>
    private sealed class SignallingWriter : StringWriter
    {
        private readonly Lock _lock = new();
        private TaskCompletionSource _flushed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task NextFlush
        {
            get
            {
                lock (_lock)
                {
                    return _flushed.Task;
                }
            }
        }

        public override Task FlushAsync(CancellationToken cancellationToken)
        {
            TaskCompletionSource done;
            lock (_lock)
            {
                done = _flushed;
                _flushed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            done.TrySetResult();
            return Task.CompletedTask;
        }
    }
}
