using System.Net;
using System.Net.Sockets;
using k8s.Models;
using Krustlet.Stages.Run.Probes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Stages.Tests.Run.Probes;

/// <summary>
/// The probe workers of one run on a fake clock against real servers: when they probe (at once, every
/// period, not before initialDelay), how results count against the thresholds, startup gating the others.
/// Each step waits for the worker to end its turn (<see cref="IProbeObserver.Waiting"/>) before the clock moves.
/// </summary>
[TestClass]
public sealed class ContainerProberTests
{
    public TestContext TestContext { get; set; } = null!;

    private static V1Probe Http(int port, string path, int? period = null, int? initialDelay = null, int? failureThreshold = null, int? successThreshold = null) => new()
    {
        HttpGet = new V1HTTPGetAction { Port = port, Path = path },
        PeriodSeconds = period,
        InitialDelaySeconds = initialDelay,
        FailureThreshold = failureThreshold,
        SuccessThreshold = successThreshold,
    };

    private static ContainerProbes Probes(V1Probe? liveness = null, V1Probe? readiness = null, V1Probe? startup = null) =>
        ContainerProbes.Of(new V1Container { Name = "main", LivenessProbe = liveness, ReadinessProbe = readiness, StartupProbe = startup });

    private static ContainerProber Start(ContainerProbes probes, FakeTimeProvider time, RecordingProbeObserver observer, V1Container? container = null) =>
        ContainerProber.Start(probes, ProbeTarget.Of(container ?? new V1Container { Name = "main" }, "127.0.0.1"), time.GetUtcNow(), observer, time, NullLogger.Instance);

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_probe_runs_at_once_then_every_period()
    {
        var time = new FakeTimeProvider();
        var start = time.GetUtcNow();
        await using var server = await ProbeEndpoint.StartAsync(time, TestContext.CancellationToken);
        var observer = new RecordingProbeObserver();
        await using var prober = Start(Probes(liveness: Http(server.Port, "/live", period: 5)), time, observer);

        await observer.WaitForAsync(o => o.Waits(ProbeKind.Liveness) == 1, TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(4));
        time.Advance(TimeSpan.FromSeconds(1));
        await observer.WaitForAsync(o => o.Waits(ProbeKind.Liveness) == 2, TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(5));
        await observer.WaitForAsync(o => o.Waits(ProbeKind.Liveness) == 3, TestContext.CancellationToken);

        CollectionAssert.AreEqual(new[] { start, start.AddSeconds(5), start.AddSeconds(10) }, server.All.Select(r => r.At).ToArray());
        Assert.AreEqual(3, observer.Results(ProbeKind.Liveness, true));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task No_probe_runs_before_the_initial_delay()
    {
        var time = new FakeTimeProvider();
        var start = time.GetUtcNow();
        await using var server = await ProbeEndpoint.StartAsync(time, TestContext.CancellationToken);
        var observer = new RecordingProbeObserver();
        await using var prober = Start(Probes(readiness: Http(server.Port, "/ready", initialDelay: 15)), time, observer);

        await observer.WaitForAsync(o => o.Waits(ProbeKind.Readiness) == 1, TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(10));
        await observer.WaitForAsync(o => o.Waits(ProbeKind.Readiness) == 2, TestContext.CancellationToken);
        Assert.IsEmpty(server.All, "at 0 s and 10 s the run is younger than 15 s");

        time.Advance(TimeSpan.FromSeconds(10));
        await observer.WaitForAsync(o => o.Waits(ProbeKind.Readiness) == 3, TestContext.CancellationToken);

        Assert.AreEqual(start.AddSeconds(20), server.All.Single().At, "the first tick at or after the delay, as the kubelet's ticker");
        Assert.AreEqual(1, observer.Results(ProbeKind.Readiness, true));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Three_failures_in_a_row_fail_liveness_and_end_its_worker()
    {
        var time = new FakeTimeProvider();
        await using var server = await ProbeEndpoint.StartAsync(time, TestContext.CancellationToken);
        server.Default = new ProbeAnswer(500);
        var observer = new RecordingProbeObserver();
        await using var prober = Start(Probes(liveness: Http(server.Port, "/live")), time, observer);

        for (var i = 1; i <= 2; i++)
        {
            await observer.WaitForAsync(o => o.Waits(ProbeKind.Liveness) == i, TestContext.CancellationToken);
            Assert.AreEqual(0, observer.Results(ProbeKind.Liveness, false), $"{i} failure(s) are below the threshold");
            time.Advance(TimeSpan.FromSeconds(10));
        }

        await observer.WaitForAsync(o => o.Results(ProbeKind.Liveness, false) == 1, TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(10));

        Assert.HasCount(3, server.All, "the worker is on hold once liveness failed: the run is being killed");
        Assert.AreEqual(3, observer.Attempts.Count(a => a.Result == ProbeResult.Failure("HTTP probe failed with statuscode: 500")), "every failed attempt is reported (an Unhealthy event each)");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Two_failures_then_a_success_start_the_count_over()
    {
        var time = new FakeTimeProvider();
        await using var server = await ProbeEndpoint.StartAsync(time, TestContext.CancellationToken);
        server.Answer("/live", 500, 500, 200, 500, 500);
        var observer = new RecordingProbeObserver();
        await using var prober = Start(Probes(liveness: Http(server.Port, "/live")), time, observer);

        for (var i = 1; i <= 5; i++)
        {
            await observer.WaitForAsync(o => o.Waits(ProbeKind.Liveness) == i, TestContext.CancellationToken);
            time.Advance(TimeSpan.FromSeconds(10));
        }

        await observer.WaitForAsync(o => o.Waits(ProbeKind.Liveness) == 6, TestContext.CancellationToken);
        Assert.AreEqual(0, observer.Results(ProbeKind.Liveness, false), "never three failures in a row");
        Assert.AreEqual(2, observer.Results(ProbeKind.Liveness, true), "the third attempt succeeded, and the sixth (the default answer)");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Readiness_needs_successThreshold_successes_and_failureThreshold_failures_to_change()
    {
        var time = new FakeTimeProvider();
        await using var server = await ProbeEndpoint.StartAsync(time, TestContext.CancellationToken);
        server.Answer("/ready", 200, 200, 500, 200, 500, 500);
        var observer = new RecordingProbeObserver();
        await using var prober = Start(Probes(readiness: Http(server.Port, "/ready", successThreshold: 2, failureThreshold: 2)), time, observer);

        for (var i = 1; i <= 6; i++)
        {
            await observer.WaitForAsync(o => o.Waits(ProbeKind.Readiness) == i, TestContext.CancellationToken);
            time.Advance(TimeSpan.FromSeconds(10));
        }

        await observer.WaitForAsync(o => o.Waits(ProbeKind.Readiness) == 7, TestContext.CancellationToken);
        CollectionAssert.AreEqual(new[] { "Readiness True", "Readiness False" }, observer.ResultLog.Take(2).ToArray(), "ready at the 2nd success; one failure between successes changes nothing; not ready at the 2nd failure in a row");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task The_startup_probe_gates_liveness_and_readiness_and_readiness_runs_as_it_succeeds()
    {
        var time = new FakeTimeProvider();
        var start = time.GetUtcNow();
        await using var server = await ProbeEndpoint.StartAsync(time, TestContext.CancellationToken);
        server.Answer("/started", 500);
        var observer = new RecordingProbeObserver();
        await using var prober = Start(Probes(startup: Http(server.Port, "/started"), liveness: Http(server.Port, "/live"), readiness: Http(server.Port, "/ready")), time, observer);

        await observer.WaitForAsync(o => o.Waits(ProbeKind.Startup) == 1 && o.Waits(ProbeKind.Liveness) == 1 && o.Waits(ProbeKind.Readiness) == 1, TestContext.CancellationToken);
        CollectionAssert.AreEqual(new[] { "/started" }, server.All.Select(r => r.Path).ToArray(), "nothing but the startup probe until it succeeds");

        time.Advance(TimeSpan.FromSeconds(10));
        await observer.WaitForAsync(o => o.Results(ProbeKind.Startup, true) == 1 && o.Results(ProbeKind.Readiness, true) >= 1 && o.Waits(ProbeKind.Liveness) == 2, TestContext.CancellationToken);
        Assert.IsTrue(server.All.Where(r => r.Path == "/ready").All(r => r.At == start.AddSeconds(10)), "readiness is probed as soon as the container has started");

        time.Advance(TimeSpan.FromSeconds(10));
        await observer.WaitForAsync(o => o.Waits(ProbeKind.Liveness) == 3, TestContext.CancellationToken);
        var live = server.All.Where(r => r.Path == "/live").ToList();
        Assert.IsNotEmpty(live, "liveness runs once started");
        Assert.IsTrue(live.All(r => r.At >= start.AddSeconds(10)));
        Assert.AreEqual(2, server.All.Count(r => r.Path == "/started"), "the startup probe stopped once it succeeded");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_tcpSocket_probe_on_a_named_port_succeeds_and_one_on_a_closed_port_fails()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var open = ((IPEndPoint)listener.LocalEndpoint).Port;
        var closed = HttpProbeTests.ClosedPort();
        var container = new V1Container { Name = "main", Ports = [new V1ContainerPort { Name = "grpc", ContainerPort = open }] };
        var time = new FakeTimeProvider();
        var observer = new RecordingProbeObserver();
        var probes = Probes(
            readiness: new V1Probe { TcpSocket = new V1TCPSocketAction { Port = "grpc" } },
            liveness: new V1Probe { TcpSocket = new V1TCPSocketAction { Port = closed } });

        await using var prober = Start(probes, time, observer, container);
        await observer.WaitForAsync(o => o.Waits(ProbeKind.Liveness) == 1 && o.Waits(ProbeKind.Readiness) == 1, TestContext.CancellationToken);

        Assert.AreEqual(1, observer.Results(ProbeKind.Readiness, true));
        Assert.AreEqual(ProbeResult.Failure($"dial tcp 127.0.0.1:{closed}: connect: connection refused"), observer.Attempts.Single().Result);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task An_errored_probe_is_reported_and_its_result_thrown_away()
    {
        var time = new FakeTimeProvider();
        var observer = new RecordingProbeObserver();
        await using var prober = Start(Probes(liveness: new V1Probe { HttpGet = new V1HTTPGetAction { Port = "missing" }, FailureThreshold = 1 }), time, observer);

        await observer.WaitForAsync(o => o.Waits(ProbeKind.Liveness) == 1, TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(10));
        await observer.WaitForAsync(o => o.Waits(ProbeKind.Liveness) == 2, TestContext.CancellationToken);

        Assert.AreEqual(ProbeResult.Error("strconv.Atoi: parsing \"missing\": invalid syntax"), observer.Attempts[0].Result);
        Assert.AreEqual(0, observer.Results(ProbeKind.Liveness, false), "an error is not a failure: the kubelet never kills for it");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Stopping_abandons_a_probe_under_way_without_a_result()
    {
        var time = new FakeTimeProvider();
        await using var server = await ProbeEndpoint.StartAsync(time, TestContext.CancellationToken);
        server.Default = new ProbeAnswer(200, Hang: true);
        var observer = new RecordingProbeObserver();
        var prober = Start(Probes(liveness: new V1Probe { HttpGet = new V1HTTPGetAction { Port = server.Port, Path = "/" }, TimeoutSeconds = 600 }), time, observer);

        await server.NextAsync(TestContext.CancellationToken);
        await prober.DisposeAsync();

        Assert.IsEmpty(observer.Attempts);
        Assert.IsEmpty(observer.ResultLog);
    }
}

/// <summary>Keeps what a prober reports; a test waits for a condition on it.</summary>
internal sealed class RecordingProbeObserver : IProbeObserver
{
    private readonly Lock _lock = new();
    private readonly List<(ProbeSpec Probe, ProbeResult Result)> _attempts = [];
    private readonly List<string> _results = [];
    private readonly Dictionary<ProbeKind, int> _waits = [];
    private readonly List<(Func<RecordingProbeObserver, bool> Match, TaskCompletionSource Seen)> _waiters = [];

    public IReadOnlyList<(ProbeSpec Probe, ProbeResult Result)> Attempts
    {
        get
        {
            lock (_lock)
            {
                return [.. _attempts];
            }
        }
    }

    /// <summary>"Readiness True", "Liveness False", … in order.</summary>
    public IReadOnlyList<string> ResultLog
    {
        get
        {
            lock (_lock)
            {
                return [.. _results];
            }
        }
    }

    public int Waits(ProbeKind kind)
    {
        lock (_lock)
        {
            return _waits.GetValueOrDefault(kind);
        }
    }

    public int Results(ProbeKind kind, bool success)
    {
        lock (_lock)
        {
            return _results.Count(r => r == $"{kind} {success}");
        }
    }

    public void Attempted(ProbeSpec probe, ProbeResult result) => Change(() => _attempts.Add((probe, result)));

    public ValueTask ResultAsync(ProbeKind kind, bool success)
    {
        Change(() => _results.Add($"{kind} {success}"));
        return ValueTask.CompletedTask;
    }

    public void Waiting(ProbeKind kind) => Change(() => _waits[kind] = _waits.GetValueOrDefault(kind) + 1);

    public Task WaitForAsync(Func<RecordingProbeObserver, bool> match, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (match(this))
            {
                return Task.CompletedTask;
            }

            var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((match, seen));
            return seen.Task.WaitAsync(cancellationToken);
        }
    }

    private void Change(Action change)
    {
        lock (_lock)
        {
            change();
            foreach (var waiter in _waiters.Where(w => w.Match(this)).ToList())
            {
                waiter.Seen.TrySetResult();
                _waiters.Remove(waiter);
            }
        }
    }
}
