using Krustlet.Stages.ImagePull;
using Krustlet.Stages.Run;

namespace Krustlet.Stages.Tests.Run;

/// <summary>A worker's containers to the saved pod and back: what a restarted agent re-adopts.</summary>
[TestClass]
public sealed class PodStateMappingTests
{
    private static readonly DateTimeOffset At = DateTimeOffset.Parse("2026-12-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static ContainerRun Run(string name) => new(name, new PulledImage("image", "sha256:0", "/m.wasm", "m.wasm", ImageDefaults.None), new RestartBackoff(new RestartBackoffOptions()));

    private static TerminatedState Exited(int code, string id) => new(code, code == 0 ? "Completed" : "Error", null, At, At.AddSeconds(1), id);

    private static SavedPod SaveAndReload(ContainerRun[] init, ContainerRun[] apps, PodFailure? failure = null)
    {
        var root = Directory.CreateTempSubdirectory("krustlet-mapping-").FullName;
        try
        {
            var store = new PodStateStore(root);
            store.Save(PodStateMapping.Save("uid-1", "default", "web", At, init, apps, failure));
            return store.Load("uid-1")!;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [TestMethod]
    public void Finished_containers_stay_finished_and_counts_and_last_states_carry_on()
    {
        var init = Run("init");
        init.State = Exited(0, "wasm://uid-1/init/0");
        var app = Run("main");
        app.RestartCount = 2;
        app.LastState = Exited(1, "wasm://uid-1/main/1");
        app.State = Exited(0, "wasm://uid-1/main/2");

        var saved = SaveAndReload([init], [app]);
        var (newInit, newApp) = (Run("init"), Run("main"));
        var failure = PodStateMapping.Restore(saved, [newInit], [newApp], At.AddMinutes(1));

        Assert.IsNull(failure);
        Assert.IsTrue(newInit.Done);
        Assert.AreEqual(init.State, newInit.State);
        Assert.IsTrue(newApp.Done);
        Assert.AreEqual(2, newApp.RestartCount);
        Assert.AreEqual(app.LastState, newApp.LastState);
        Assert.AreEqual(app.State, newApp.State);
        Assert.AreEqual(At, saved.StartTime);
    }

    [TestMethod]
    public void A_run_under_way_runs_again_counted_with_the_agents_stop_as_its_last_state()
    {
        var app = Run("main");
        app.RestartCount = 1;
        app.State = new RunningState(At);

        var restored = Run("main");
        PodStateMapping.Restore(SaveAndReload([], [app]), [], [restored], At.AddMinutes(1));

        Assert.IsFalse(restored.Done);
        Assert.AreEqual(2, restored.RestartCount);
        Assert.IsFalse(restored.RestartDue, "already counted");
        Assert.AreEqual(new TerminatedState(ContainerExit.KilledExitCode, "Error", PodStateMapping.AgentStoppedMessage, At, At.AddMinutes(1), "wasm://uid-1/main/1"), restored.LastState);
    }

    [TestMethod]
    public void A_restart_that_was_due_is_counted_and_the_container_runs_at_once()
    {
        var app = Run("main");
        app.LastState = Exited(1, "wasm://uid-1/main/0");
        app.State = new WaitingState("CrashLoopBackOff", "back-off 10s");
        app.RestartDue = true;

        var saved = SaveAndReload([], [app]);
        var restored = Run("main");
        PodStateMapping.Restore(saved, [], [restored], At);

        Assert.IsTrue(saved.Containers[0].BackingOff);
        Assert.AreEqual(1, restored.RestartCount);
        Assert.AreEqual(app.LastState, restored.LastState);
        Assert.IsInstanceOfType<WaitingState>(restored.State);
    }

    [TestMethod]
    public void A_failed_pod_stays_failed_and_runs_nothing_more()
    {
        var app = Run("main");
        app.State = new RunningState(At);

        var restored = Run("main");
        var failure = PodStateMapping.Restore(SaveAndReload([], [app], PodFailure.Evicted("disk")), [], [restored], At);

        Assert.AreEqual(PodFailure.Evicted("disk"), failure);
        Assert.IsTrue(restored.Done);
    }

    [TestMethod]
    public void A_container_the_saved_pod_does_not_name_starts_afresh()
    {
        var restored = Run("sidecar");
        PodStateMapping.Restore(SaveAndReload([], [Run("main")]), [], [restored], At);

        Assert.AreEqual(0, restored.RestartCount);
        Assert.IsFalse(restored.Done);
        Assert.IsNull(restored.LastState);
    }
}
