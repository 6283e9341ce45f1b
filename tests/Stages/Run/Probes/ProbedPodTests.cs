using k8s.Models;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.Run.Probes;

/// <summary>
/// Probed pods through the real compile and run stages: a sleeping C module runs while a server the test
/// controls answers the probes and the fake clock drives them. Liveness failures restart the container
/// under its restartPolicy, readiness flips Ready and the pod's Ready condition, the startup probe gates
/// Started. Each clock step waits for the previous probe's Event or status.
/// </summary>
[TestClass]
public sealed class ProbedPodTests
{
    public TestContext TestContext { get; set; } = null!;

    private static Dictionary<string, string> Images() => new() { ["sleeper"] = WasmFixtures.C("sleeper") };

    /// <summary>A pod whose one container sleeps for days (its sleep parks on the fake clock, far ahead of any probe).</summary>
    private static V1Pod Pod(string name, string restartPolicy, Action<V1Container> configure)
    {
        var pod = RunHarness.Pod(name, restartPolicy, images: ["sleeper"]);
        var container = pod.Spec.Containers[0];
        container.Args = ["1000000", "1"];
        configure(container);
        return pod;
    }

    private static V1Probe Http(int port, string path, int? failureThreshold = null, int? initialDelay = null) => new()
    {
        HttpGet = new V1HTTPGetAction { Port = port, Path = path },
        FailureThreshold = failureThreshold,
        InitialDelaySeconds = initialDelay,
    };

    private static ContainerStatusSnapshot Container(PodRuntimeStatus status) => status.Containers[0];

    private static V1PodStatus Api(PodReport report) => new PodStatusBuilder("127.0.0.1").ToStatus(report);

    private static string Condition(PodReport report, string type) => Api(report).Conditions.Single(c => c.Type == type).Status;

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_liveness_failure_at_the_threshold_kills_the_container_and_Always_restarts_it()
    {
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken);
        server.Default = new ProbeAnswer(500);
        await using var harness = new RunHarness(Images());
        var events = new EventWaiter(harness.Events);
        var pod = Pod("live", "Always", c => c.LivenessProbe = Http(server.Port, "/live"));

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        var running = (await harness.WaitForAsync(pod, s => Container(s).Running, TestContext.CancellationToken)).Runtime!;
        Assert.IsTrue(Container(running).Ready, "a liveness probe alone does not gate readiness");

        await events.WaitForAsync("Unhealthy", 1, TestContext.CancellationToken);
        harness.Time.Advance(TimeSpan.FromSeconds(10));
        await events.WaitForAsync("Unhealthy", 2, TestContext.CancellationToken);
        var backoffTimer = harness.Time.NextTimer;
        harness.Time.Advance(TimeSpan.FromSeconds(10));

        var backingOff = (await harness.WaitForAsync(pod, s => Container(s).State is WaitingState { Reason: "CrashLoopBackOff" }, TestContext.CancellationToken)).Runtime!;
        var killed = Container(backingOff).LastState!;
        Assert.AreEqual(ContainerExit.KilledExitCode, killed.ExitCode);
        Assert.AreEqual("Error", killed.Reason);
        Assert.AreEqual("killed: Container main failed liveness probe, will be restarted", killed.Message);
        var recorded = harness.Events.All.Where(e => e.Pod == "live").ToList();
        Assert.AreEqual(3, recorded.Count(e => e.Warning && e.Reason == "Unhealthy" && e.Message == "Liveness probe failed: HTTP probe failed with statuscode: 500"));
        Assert.IsTrue(recorded.Any(e => !e.Warning && e.Reason == "Killing" && e.Message == "Container main failed liveness probe, will be restarted"));

        await backoffTimer.WaitAsync(TestContext.CancellationToken);
        harness.Time.Advance(TimeSpan.FromSeconds(10));
        var restarted = (await harness.WaitForAsync(pod, s => Container(s).RestartCount == 1 && Container(s).Running, TestContext.CancellationToken)).Runtime!;
        Assert.AreEqual("wasm://uid-live/main/1", Container(restarted).ContainerId);
        await events.WaitForAsync("Unhealthy", 4, TestContext.CancellationToken); // the new run is probed afresh, at once
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Under_Never_a_liveness_failure_leaves_the_container_terminated_and_the_pod_failed()
    {
        await using var harness = new RunHarness(Images());
        var pod = Pod("once", "Never", c => c.LivenessProbe = new V1Probe { TcpSocket = new V1TCPSocketAction { Port = HttpProbeTests.ClosedPort() }, FailureThreshold = 1 });

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        var failed = (await harness.WaitForAsync(pod, s => s.Phase == PodPhase.Failed, TestContext.CancellationToken)).Runtime!;

        var terminated = (TerminatedState)Container(failed).State;
        Assert.AreEqual(137, terminated.ExitCode);
        Assert.AreEqual("killed: Container main failed liveness probe", terminated.Message, "no \"will be restarted\" under Never, as the kubelet says");
        Assert.AreEqual(0, Container(failed).RestartCount);
        Assert.IsTrue(harness.Events.All.Any(e => e.Reason == "Killing" && e.Message == "Container main failed liveness probe"));
        StringAssert.StartsWith(harness.Events.All.First(e => e.Reason == "Unhealthy").Message, "Liveness probe failed: dial tcp 127.0.0.1:");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Readiness_flips_Ready_and_the_pods_Ready_condition_false_then_true()
    {
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken);
        server.Answer("/ready", 200, 500, 500, 500, 200);
        await using var harness = new RunHarness(Images());
        var events = new EventWaiter(harness.Events);
        var pod = Pod("ready", "Always", c =>
        {
            c.Ports = [new V1ContainerPort { Name = "health", ContainerPort = server.Port }];
            c.ReadinessProbe = new V1Probe { HttpGet = new V1HTTPGetAction { Port = "health", Path = "/ready" }, InitialDelaySeconds = 5 };
        });

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        var notYet = await harness.WaitForAsync(pod, s => Container(s).Running, TestContext.CancellationToken);
        Assert.IsFalse(Container(notYet.Runtime!).Ready, "not ready before the readiness probe first succeeds");
        Assert.IsTrue(Container(notYet.Runtime!).Started);
        Assert.AreEqual("False", Condition(notYet, "Ready"));

        harness.Time.Advance(TimeSpan.FromSeconds(10));
        var ready = await harness.WaitForAsync(pod, s => Container(s).Ready, TestContext.CancellationToken);
        Assert.AreEqual("True", Condition(ready, "Ready"));
        Assert.AreEqual("True", Condition(ready, "ContainersReady"));
        Assert.IsTrue(Api(ready).ContainerStatuses[0].Ready);

        for (var failures = 1; failures <= 2; failures++)
        {
            harness.Time.Advance(TimeSpan.FromSeconds(10));
            await events.WaitForAsync("Unhealthy", failures, TestContext.CancellationToken);
        }

        harness.Time.Advance(TimeSpan.FromSeconds(10));
        var unready = await harness.WaitForAsync(pod, InOrder(s => Container(s).Ready, s => !Container(s).Ready), TestContext.CancellationToken);
        Assert.IsTrue(Container(unready.Runtime!).Running, "a readiness failure does not touch the run");
        Assert.AreEqual("False", Condition(unready, "Ready"));
        Assert.AreEqual("ContainersNotReady", Api(unready).Conditions.Single(c => c.Type == "Ready").Reason);
        Assert.AreEqual(3, harness.Events.All.Count(e => e.Reason == "Unhealthy" && e.Message == "Readiness probe failed: HTTP probe failed with statuscode: 500"));

        harness.Time.Advance(TimeSpan.FromSeconds(10));
        var readyAgain = await harness.WaitForAsync(pod, InOrder(s => Container(s).Ready, s => !Container(s).Ready, s => Container(s).Ready), TestContext.CancellationToken);
        Assert.AreEqual("True", Condition(readyAgain, "Ready"));
        Assert.AreEqual(0, Container(readyAgain.Runtime!).RestartCount);
        Assert.IsFalse(harness.Events.All.Any(e => e.Reason == "Killing"));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task The_startup_probe_gates_Started_and_Ready()
    {
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken);
        server.Answer("/started", 500);
        await using var harness = new RunHarness(Images());
        var events = new EventWaiter(harness.Events);
        var pod = Pod("slow", "Always", c => c.StartupProbe = Http(server.Port, "/started"));

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        await events.WaitForAsync("Unhealthy", 1, TestContext.CancellationToken);
        var starting = harness.Run.Current(pod.Metadata.Uid)!;
        Assert.IsTrue(Container(starting).Running);
        Assert.IsFalse(Container(starting).Started, "not started before the startup probe succeeds");
        Assert.IsFalse(Container(starting).Ready);
        Assert.AreEqual("Startup probe failed: HTTP probe failed with statuscode: 500", harness.Events.All.Single(e => e.Reason == "Unhealthy").Message);

        harness.Time.Advance(TimeSpan.FromSeconds(10));
        var started = (await harness.WaitForAsync(pod, s => Container(s).Started, TestContext.CancellationToken)).Runtime!;
        Assert.IsTrue(Container(started).Ready, "no readiness probe: ready once started");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_startup_failure_at_the_threshold_kills_the_container()
    {
        await using var harness = new RunHarness(Images());
        var pod = Pod("never-starts", "Never", c => c.StartupProbe = new V1Probe { TcpSocket = new V1TCPSocketAction { Port = HttpProbeTests.ClosedPort() }, FailureThreshold = 1 });

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        var failed = (await harness.WaitForAsync(pod, s => s.Phase == PodPhase.Failed, TestContext.CancellationToken)).Runtime!;

        Assert.AreEqual("killed: Container main failed startup probe", ((TerminatedState)Container(failed).State).Message);
        Assert.IsTrue(harness.Events.All.Any(e => e.Reason == "Killing" && e.Message == "Container main failed startup probe"));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_redirect_to_another_host_is_ready_with_a_ProbeWarning()
    {
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken);
        server.Default = new ProbeAnswer(302, Location: "http://localhost:{port}/login", Body: "see login");
        await using var harness = new RunHarness(Images());
        var pod = Pod("redirect", "Always", c => c.ReadinessProbe = Http(server.Port, "/"));

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        await harness.WaitForAsync(pod, s => Container(s).Ready, TestContext.CancellationToken);

        var warning = harness.Events.All.Single(e => e.Reason == "ProbeWarning");
        Assert.IsTrue(warning.Warning);
        Assert.AreEqual("Readiness probe warning: Probe terminated redirects, Response body: see login", warning.Message);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_probe_that_times_out_is_a_failure_and_a_refused_tcpSocket_too()
    {
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken);
        server.Default = new ProbeAnswer(200, Hang: true);
        var closed = HttpProbeTests.ClosedPort();
        await using var harness = new RunHarness(Images());
        var events = new EventWaiter(harness.Events);
        var pod = Pod("slow-answer", "Always", c =>
        {
            c.ReadinessProbe = new V1Probe { HttpGet = new V1HTTPGetAction { Port = server.Port, Path = "/" }, TimeoutSeconds = 1 };
            c.LivenessProbe = new V1Probe { TcpSocket = new V1TCPSocketAction { Port = closed } };
        });

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        await events.WaitForAsync("Unhealthy", 2, TestContext.CancellationToken);

        var messages = harness.Events.All.Where(e => e.Reason == "Unhealthy").Select(e => e.Message).ToList();
        CollectionAssert.Contains(messages, $"Readiness probe failed: Get \"http://127.0.0.1:{server.Port}/\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)");
        CollectionAssert.Contains(messages, $"Liveness probe failed: dial tcp 127.0.0.1:{closed}: connect: connection refused");
        Assert.IsFalse(Container(harness.Run.Current(pod.Metadata.Uid)!).Ready);
    }

    /// <summary>A predicate over a pod's reports read in order: true at the report matching the last step, once every earlier step matched an earlier report.</summary>
    private static Func<PodRuntimeStatus, bool> InOrder(params Func<PodRuntimeStatus, bool>[] steps)
    {
        var next = 0;
        return status =>
        {
            if (next < steps.Length && steps[next](status))
            {
                next++;
            }

            return next == steps.Length;
        };
    }
}

/// <summary>Lets a test wait until the run stage has recorded a number of Events of a reason.</summary>
internal sealed class EventWaiter
{
    private readonly RecordedEvents _events;
    private readonly Lock _lock = new();
    private readonly List<(string Reason, int Count, TaskCompletionSource Seen)> _waiters = [];

    public EventWaiter(RecordedEvents events)
    {
        _events = events;
        events.OnRecorded = _ => Check();
    }

    public Task WaitForAsync(string reason, int count, CancellationToken cancellationToken)
    {
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            _waiters.Add((reason, count, seen));
        }

        Check();
        return seen.Task.WaitAsync(cancellationToken);
    }

    private void Check()
    {
        var all = _events.All;
        lock (_lock)
        {
            foreach (var waiter in _waiters.Where(w => all.Count(e => e.Reason == w.Reason) >= w.Count).ToList())
            {
                waiter.Seen.TrySetResult();
                _waiters.Remove(waiter);
            }
        }
    }
}
