using k8s.Models;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.Run;
using Krustlet.Stages.Run.Probes;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Stages.Tests.Run.Probes;

/// <summary>
/// A run's started and ready as the pod's state shows them: the kubelet's rules (started once the startup
/// probe passed, ready once started, ready by its readiness probe and, for an HTTP handler, serving), and
/// the status published when a handler's listener is bound.
/// </summary>
[TestClass]
public sealed class RunHealthTests
{
    private static readonly DateTimeOffset At = DateTimeOffset.Parse("2026-12-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static readonly WasmEngineHost Host = new(new WasmEngineOptions());

    private static readonly Lazy<CompiledArtifact> Artifact = new(() =>
        CompiledArtifact.ForModule("sha256:0", global::Krustlet.Stages.Wasmtime.Native.NativeModule.Compile(Host.Native.Engine, File.ReadAllBytes(WasmFixtures.Wat(Wat.Returns))), Host, CompileSource.Compiled));

    private string _root = null!;
    private ContainerRun _main = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void Create()
    {
        _root = Directory.CreateTempSubdirectory("krustlet-health-").FullName;
        _main = new ContainerRun("main", Image(), new RestartBackoff(new RestartBackoffOptions()));
    }

    [TestCleanup]
    public void Remove() => Directory.Delete(_root, recursive: true);

    private static PulledImage Image() => new("app:1", "sha256:app", "/m.wasm", "m.wasm", ImageDefaults.None);

    private PodRunState State(V1Container spec) =>
        new("uid-1", "default", "web", RestartPolicy.Always, At, [], [_main], new Dictionary<string, ContainerDefinition> { ["main"] = new(spec, Image(), Artifact.Value, null) }, null, "BestEffort", null, NullLogger.Instance);

    private void Begin(PodRunState state, ContainerControl control) =>
        state.BeginRun(_main, control, restart => Path.Combine(_root, $"{restart}.log"), LogRotationOptions.Default, At);

    private static V1Probe Probe() => new() { TcpSocket = new V1TCPSocketAction { Port = 1 } };

    private static ContainerStatusSnapshot Shown(PodRunState state) => state.Snapshot().Containers[0];

    [TestMethod]
    public void A_container_without_probes_is_started_and_ready_while_it_runs()
    {
        var state = State(new V1Container { Name = "main", Image = "app:1" });
        Assert.IsFalse(Shown(state).Ready);

        Begin(state, new ContainerControl(TimeProvider.System));

        Assert.IsTrue(Shown(state).Started);
        Assert.IsTrue(Shown(state).Ready);
    }

    [TestMethod]
    public void The_startup_probe_gates_started_and_ready_and_the_readiness_probe_ready()
    {
        var state = State(new V1Container { Name = "main", Image = "app:1", StartupProbe = Probe(), ReadinessProbe = Probe() });
        var control = new ContainerControl(TimeProvider.System);
        Begin(state, control);
        Assert.IsFalse(Shown(state).Started);
        Assert.IsFalse(state.SetProbeResult(_main, control, ProbeKind.Readiness, true), "ready by its probe, but not started: nothing shown changes");
        Assert.IsFalse(Shown(state).Ready);

        Assert.IsTrue(state.SetProbeResult(_main, control, ProbeKind.Startup, true));
        Assert.IsTrue(Shown(state).Started);
        Assert.IsTrue(Shown(state).Ready);

        Assert.IsTrue(state.SetProbeResult(_main, control, ProbeKind.Readiness, false));
        Assert.IsFalse(Shown(state).Ready);
        Assert.IsTrue(Shown(state).Started, "readiness never takes started back");
    }

    [TestMethod]
    public void A_result_for_a_run_that_ended_changes_nothing_and_the_next_run_starts_afresh()
    {
        var state = State(new V1Container { Name = "main", Image = "app:1", ReadinessProbe = Probe() });
        var first = new ContainerControl(TimeProvider.System);
        Begin(state, first);
        state.SetProbeResult(_main, first, ProbeKind.Readiness, true);
        state.EndRun(_main, new ContainerExit(ExitKind.Exited, 1, "Error", null, At, At.AddSeconds(1)), null, initContainer: false);

        Assert.IsFalse(state.SetProbeResult(_main, first, ProbeKind.Readiness, true));
        Begin(state, new ContainerControl(TimeProvider.System));
        Assert.IsFalse(Shown(state).Ready, "a restarted container is not ready until its probe passes again");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task An_HTTP_handler_is_ready_once_its_listener_is_bound_and_that_is_published()
    {
        var state = State(new V1Container { Name = "main", Image = "app:1", Ports = [new V1ContainerPort { Name = "http", ContainerPort = 8080 }] });
        var control = new ContainerControl(TimeProvider.System);
        Begin(state, control);
        var published = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var events = new ContainerEvents(new RecordedEvents());
        await using var health = RunHealth.Start(state, _main, control, events, () => new V1Pod(), () => { published.TrySetResult(); return ValueTask.CompletedTask; }, "127.0.0.1", At, TimeProvider.System, NullLogger.Instance);
        Assert.IsTrue(Shown(state).Started);
        Assert.IsFalse(Shown(state).Ready, "a handler is not ready before it serves");

        control.MarkServing();
        await published.Task.WaitAsync(TestContext.CancellationToken);

        Assert.IsTrue(Shown(state).Ready);
    }

    [TestMethod]
    public void An_HTTP_handler_with_a_readiness_probe_needs_both()
    {
        var state = State(new V1Container { Name = "main", Image = "app:1", Ports = [new V1ContainerPort { Name = "http", ContainerPort = 8080 }], ReadinessProbe = Probe() });
        var control = new ContainerControl(TimeProvider.System);
        Begin(state, control);

        control.MarkServing();
        Assert.IsFalse(Shown(state).Ready, "serving, but its probe has not passed");
        state.SetProbeResult(_main, control, ProbeKind.Readiness, true);
        Assert.IsTrue(Shown(state).Ready);
    }
}
