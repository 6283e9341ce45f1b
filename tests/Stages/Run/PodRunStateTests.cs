using k8s.Models;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.Run;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Stages.Tests.Run;

/// <summary>
/// The invariant of a pod's state: every change is saved in the step that makes it, a restart is counted
/// in the step that marks its run Running, and nothing is saved once the pod is suspended or forgotten.
/// </summary>
[TestClass]
public sealed class PodRunStateTests
{
    private static readonly DateTimeOffset At = DateTimeOffset.Parse("2026-12-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static readonly WasmEngineHost Host = new(new WasmEngineOptions());

    private static readonly Lazy<CompiledArtifact> Artifact = new(() =>
        CompiledArtifact.ForModule("sha256:0", global::Krustlet.Stages.Wasmtime.Native.NativeModule.Compile(Host.Native.Engine, File.ReadAllBytes(WasmFixtures.Wat(Wat.Returns))), Host, CompileSource.Compiled));

    private string _root = null!;
    private PodStateStore _store = null!;
    private ContainerRun _main = null!;

    [TestInitialize]
    public void Create()
    {
        _root = Directory.CreateTempSubdirectory("krustlet-runstate-").FullName;
        _store = new PodStateStore(_root);
        _main = new ContainerRun("main", Image("app:1"), new RestartBackoff(new RestartBackoffOptions()));
    }

    [TestCleanup]
    public void Remove() => Directory.Delete(_root, recursive: true);

    private static PulledImage Image(string reference) => new(reference, $"sha256:{reference}", "/m.wasm", "m.wasm", ImageDefaults.None);

    private static Dictionary<string, ContainerDefinition> Definitions(string image) => new()
    {
        ["main"] = new ContainerDefinition(new V1Container { Name = "main", Image = image }, Image(image), Artifact.Value, null),
    };

    private PodRunState State(RestartPolicy policy = RestartPolicy.Always) =>
        new("uid-1", "default", "web", policy, At, [], [_main], Definitions("app:1"), null, "BestEffort", _store, NullLogger.Instance);

    private SavedContainer Saved() => _store.Load("uid-1")!.Containers[0];

    private ContainerLaunch Begin(PodRunState state, ContainerControl control) =>
        state.BeginRun(_main, control, restart => Path.Combine(_root, "logs", $"{restart}.log"), LogRotationOptions.Default, At)!;

    private static ContainerExit Exit(int code) => new(ExitKind.Exited, code, code == 0 ? "Completed" : "Error", null, At, At.AddSeconds(1));

    [TestMethod]
    public void Each_change_is_saved_in_the_step_that_makes_it_and_a_restart_is_counted_as_its_run_starts()
    {
        var state = State();
        Begin(state, new ContainerControl(TimeProvider.System));
        Assert.AreEqual(At, Saved().RunningSince, "Running is saved as it is shown");

        Assert.AreEqual(RestartAction.RestartAfterBackoff, state.EndRun(_main, Exit(1), null, initContainer: false));
        Assert.IsTrue(Saved().BackingOff);
        Assert.AreEqual(0, Saved().RestartCount, "not counted while it waits");
        Assert.AreEqual("wasm://uid-1/main/0", Saved().LastState!.ContainerId);

        var launch = Begin(state, new ContainerControl(TimeProvider.System));
        Assert.AreEqual(Path.Combine(_root, "logs", "1.log"), launch.LogPath);
        Assert.IsTrue(File.Exists(launch.LogPath), "the run's log exists as soon as it can be shown Running");
        Assert.AreEqual(1, Saved().RestartCount);
        Assert.IsFalse(Saved().BackingOff);
        Assert.AreEqual(1, state.Snapshot().Containers[0].RestartCount);
        Assert.AreEqual("wasm://uid-1/main/1", state.Snapshot().Containers[0].ContainerId);
    }

    [TestMethod]
    public void Nothing_is_saved_once_the_pod_is_suspended_and_the_phase_shown_stays()
    {
        var state = State();
        Begin(state, new ContainerControl(TimeProvider.System));
        state.Suspend();
        state.BeginStop();

        state.EndRun(_main, new ContainerExit(ExitKind.Killed, ContainerExit.KilledExitCode, "Error", "killed: the agent is shutting down", At, At), KillCause.Stopped("the agent is shutting down"), initContainer: false);

        Assert.AreEqual(At, Saved().RunningSince, "the next agent sees the run under way");
        Assert.AreEqual(PodPhase.Running, state.Snapshot().Phase);
        Assert.IsNull(state.BeginRun(_main, new ContainerControl(TimeProvider.System), _ => Path.Combine(_root, "logs", "x.log"), LogRotationOptions.Default, At), "nothing starts once stopping");
    }

    [TestMethod]
    public void Nothing_is_saved_once_the_pod_is_forgotten()
    {
        var state = State();
        state.Save();
        state.StopSaving();
        _store.Delete("uid-1");

        state.Fail(PodFailure.Evicted("disk"));

        Assert.IsNull(_store.Load("uid-1"));
        Assert.AreEqual(PodPhase.Failed, state.Snapshot().Phase);
    }

    [TestMethod]
    public void A_changed_image_kills_the_running_app_container_once_and_a_restart_follows_at_once()
    {
        var state = State(RestartPolicy.Never);
        var control = new ContainerControl(TimeProvider.System);
        Begin(state, control);

        var (kill, wake) = state.Update(Definitions("app:2"));
        Assert.AreEqual(1, kill.Count);
        Assert.AreSame(control, kill[0].Control);
        Assert.AreEqual(0, wake.Count);
        Assert.AreEqual(0, state.Update(Definitions("app:2")).Kill.Count, "the same definition again changes nothing");

        var killed = new ContainerExit(ExitKind.Killed, ContainerExit.KilledExitCode, "Error", "killed: Container main definition changed, will be restarted", At, At.AddSeconds(1));
        Assert.AreEqual(RestartAction.RestartNow, state.EndRun(_main, killed, KillCause.DefinitionChanged("main"), initContainer: false));
        Assert.IsTrue(Saved().BackingOff, "the restart due is saved, so an agent stopped now still counts it");

        Begin(state, new ContainerControl(TimeProvider.System));
        var main = state.Snapshot().Containers[0];
        Assert.AreEqual(1, main.RestartCount);
        Assert.AreEqual("app:2", main.Image);
        Assert.AreEqual("wasm://uid-1/main/0", main.LastState!.ContainerId);
    }

    [TestMethod]
    public void A_changed_image_wakes_a_container_waiting_out_its_backoff()
    {
        var state = State();
        Begin(state, new ContainerControl(TimeProvider.System));
        state.EndRun(_main, Exit(1), null, initContainer: false);

        var (kill, wake) = state.Update(Definitions("app:2"));

        Assert.AreEqual(0, kill.Count);
        Assert.AreEqual(1, wake.Count);
        Assert.AreSame(_main.Wake, wake[0]);
    }
}
