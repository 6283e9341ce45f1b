using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.Run;

/// <summary>
/// When the data directory refuses a write (a full disk, a read-only mount, a path that is not a
/// directory), the container the write was for ends with a reason, its status agreeing with its
/// pod's, and other pods run (#18 item 9).
/// </summary>
[TestClass]
public sealed class DataDirectoryFaultTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_log_that_cannot_be_created_ends_the_container_with_StartError_and_its_pod_agrees()
    {
        await using var harness = new RunHarness(new Dictionary<string, string> { ["hello"] = WasmFixtures.C("hello") });
        var blocked = RunHarness.Pod("blocked");
        var good = RunHarness.Pod("good");
        Directory.CreateDirectory(harness.LogRoot);
        await File.WriteAllTextAsync(Path.GetDirectoryName(PodLogLayout.ContainerDirectory(harness.LogRoot, "default", "blocked", "uid-blocked", "main"))!, "a file where the pod's log directory goes", TestContext.CancellationToken);

        await harness.SubmitAsync(blocked, TestContext.CancellationToken);
        await harness.SubmitAsync(good, TestContext.CancellationToken);
        await harness.WaitForAsync(good, s => s.Phase == PodPhase.Succeeded, TestContext.CancellationToken);
        var report = await harness.Writer.WaitForAsync(blocked.Metadata.Uid, r => r.Kind == PodReportKind.Failed || r.Runtime?.Phase is PodPhase.Succeeded or PodPhase.Failed, TestContext.CancellationToken);

        // restartPolicy Never: the pod Failed, its one container terminated with StartError and why, as a
        // kubelet shows a container its runtime could not create; nothing says it is still starting.
        Assert.AreEqual(PodPhase.Failed, report.Runtime!.Phase, report.Message);
        var terminated = Assert.IsInstanceOfType<TerminatedState>(report.Runtime.Containers.Single().State);
        Assert.AreEqual(KubeletReasons.StartError, terminated.Reason);
        Assert.AreEqual(128, terminated.ExitCode);
        var log = PodLogLayout.RunLog(harness.LogRoot, "default", "blocked", "uid-blocked", "main", 0);
        StringAssert.StartsWith(terminated.Message, $"cannot create the container's log {log}: ");
        Assert.DoesNotContain("Exception", terminated.Message);
        Assert.IsNull(report.Reason, "no InternalError: the pod failed because its container did");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Under_Always_the_container_backs_off_and_runs_once_its_log_can_be_created()
    {
        await using var harness = new RunHarness(new Dictionary<string, string> { ["spin"] = WasmFixtures.Wat(Wat.InfiniteLoop) });
        var pod = RunHarness.Pod("blocked", restartPolicy: "Always", images: ["spin"]);
        Directory.CreateDirectory(harness.LogRoot);
        var blocker = Path.GetDirectoryName(PodLogLayout.ContainerDirectory(harness.LogRoot, "default", "blocked", "uid-blocked", "main"))!;
        await File.WriteAllTextAsync(blocker, "a file where the pod's log directory goes", TestContext.CancellationToken);

        var backOffTimer = harness.Time.NextTimer;
        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        var waiting = await harness.WaitForAsync(pod, s => s.Containers.Count > 0 && s.Containers[0].State is WaitingState { Reason: "CrashLoopBackOff" }, TestContext.CancellationToken);
        Assert.AreEqual(PodPhase.Running, waiting.Runtime!.Phase, "a restarting pod is Running, as the kubelet shows it");
        Assert.AreEqual(KubeletReasons.StartError, waiting.Runtime.Containers[0].LastState!.Reason);

        // The data directory is fixed; the back-off ends and the run starts.
        File.Delete(blocker);
        await backOffTimer.WaitAsync(TestContext.CancellationToken);
        harness.Time.Advance(TimeSpan.FromSeconds(10));
        var running = await harness.WaitForAsync(pod, s => s.Containers.Count > 0 && s.Containers[0].State is RunningState && s.Containers[0].RestartCount == 1, TestContext.CancellationToken);
        Assert.AreEqual(PodPhase.Running, running.Runtime!.Phase);
        Assert.IsTrue(File.Exists(PodLogLayout.RunLog(harness.LogRoot, "default", "blocked", "uid-blocked", "main", 1)));
    }
}
