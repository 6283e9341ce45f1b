using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.Run;

/// <summary>
/// An update of a running pod through the real pull, compile and run stages: a changed image restarts
/// the container on the new module with the kubelet's semantics (Killing event, restart counted, the
/// killed run as lastState); an update that changes no image restarts nothing.
/// </summary>
[TestClass]
public sealed class RunStageUpdateTests
{
    private const string DefinitionChanged = "Container main definition changed, will be restarted";

    public TestContext TestContext { get; set; } = null!;

    private static Dictionary<string, string> Images() => new()
    {
        ["spin"] = WasmFixtures.Wat(Wat.InfiniteLoop),
        ["spin-v2"] = WasmFixtures.Wat(Wat.WritesThen("(drop (i32.const 2)) (call $loop)")),
        ["exit-1"] = WasmFixtures.Wat(Wat.Exit(1)),
    };

    private static k8s.Models.V1Pod Updated(k8s.Models.V1Pod pod, string image)
    {
        var updated = RunHarness.Pod(pod.Metadata.Name, pod.Spec.RestartPolicy, images: [image]);
        updated.Metadata.ResourceVersion = "2";
        return updated;
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow("Always")]
    [DataRow("Never")]
    public async Task A_changed_image_kills_the_running_container_and_starts_it_on_the_new_module_counting_the_restart(string restartPolicy)
    {
        await using var harness = new RunHarness(Images(), saveState: true);
        var pod = RunHarness.Pod("server", restartPolicy, images: ["spin"]);
        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        await harness.WaitForAsync(pod, s => s.Containers[0].Running, TestContext.CancellationToken);

        await harness.SubmitAsync(Updated(pod, "spin-v2"), TestContext.CancellationToken);
        var restarted = (await harness.WaitForAsync(pod, s => s.Containers[0].RestartCount == 1 && s.Containers[0].Running, TestContext.CancellationToken)).Runtime!;

        var main = restarted.Containers[0];
        Assert.AreEqual(PodPhase.Running, restarted.Phase);
        Assert.AreEqual("spin-v2", main.Image);
        Assert.AreEqual(WasmFixtures.Digest(Images()["spin-v2"]), main.ImageId, "the new image's module runs");
        Assert.AreEqual("wasm://uid-server/main/1", main.ContainerId);
        Assert.AreEqual(ContainerExit.KilledExitCode, main.LastState!.ExitCode);
        Assert.AreEqual($"killed: {DefinitionChanged}", main.LastState.Message);
        Assert.AreEqual("wasm://uid-server/main/0", main.LastState.ContainerId, "lastState is the killed run");
        Assert.IsTrue(harness.Events.All.Any(e => e.Reason == "Killing" && e.Message == DefinitionChanged));
        Assert.IsTrue(File.Exists(Path.Combine(harness.LogRoot, "default_server_uid-server", "main", "1.log")));
        Assert.AreEqual(1, harness.State!.Load(pod.Metadata.Uid)!.Containers[0].RestartCount, "the restart is saved as it is shown");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_container_backing_off_starts_at_once_on_a_changed_image()
    {
        await using var harness = new RunHarness(Images());
        var pod = RunHarness.Pod("crasher", restartPolicy: "OnFailure", images: ["exit-1"]);
        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        await harness.WaitForAsync(pod, s => s.Containers[0].State is WaitingState { Reason: "CrashLoopBackOff" }, TestContext.CancellationToken);

        // The clock never moves: only the changed image can end the 10 s backoff.
        await harness.SubmitAsync(Updated(pod, "spin"), TestContext.CancellationToken);
        var running = (await harness.WaitForAsync(pod, s => s.Containers[0].Running && s.Containers[0].ImageId == WasmFixtures.Digest(Images()["spin"]), TestContext.CancellationToken)).Runtime!;

        Assert.AreEqual(1, running.Containers[0].RestartCount);
        Assert.AreEqual(1, running.Containers[0].LastState!.ExitCode, "lastState is the failed run of the old image");
        Assert.AreEqual(WasmFixtures.Digest(Images()["spin"]), running.Containers[0].ImageId);
        Assert.IsFalse(harness.Events.All.Any(e => e.Reason == "Killing"), "nothing was running to kill");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task An_update_that_changes_no_image_restarts_nothing()
    {
        await using var harness = new RunHarness(Images());
        var pod = RunHarness.Pod("server", restartPolicy: "Always", images: ["spin"]);
        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        await harness.WaitForAsync(pod, s => s.Containers[0].Running, TestContext.CancellationToken);

        var relabelled = Updated(pod, "spin");
        relabelled.Metadata.Labels = new Dictionary<string, string> { ["tier"] = "web" };
        await harness.SubmitAsync(relabelled, TestContext.CancellationToken);
        var applied = await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Origin == PodReportOrigin.Pipeline && r.ResourceVersion == "2", TestContext.CancellationToken);

        Assert.AreEqual(PodReportKind.Applied, applied.Kind);
        var now = harness.Run.Current(pod.Metadata.Uid)!.Containers[0];
        Assert.IsTrue(now.Running);
        Assert.AreEqual(0, now.RestartCount);
        Assert.IsFalse(harness.Events.All.Any(e => e.Reason == "Killing"));
    }
}
