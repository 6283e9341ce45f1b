using Krustlet.Stages.Run;

namespace Krustlet.Stages.Tests.Run;

/// <summary>
/// Saved pod state: a second run stage on the same data directory (a restarted agent) re-adopts the
/// first one's pods — restart counts carry on, finished containers stay finished, deleted pods leave nothing.
/// </summary>
[TestClass]
public sealed class PodReadoptionTests
{
    public TestContext TestContext { get; set; } = null!;

    private static Dictionary<string, string> Images() => new()
    {
        ["hello"] = WasmFixtures.C("hello"),
        ["exit-1"] = WasmFixtures.Wat(Wat.Exit(1)),
        ["spin"] = WasmFixtures.Wat(Wat.InfiniteLoop),
    };

    private static string Root() => Directory.CreateTempSubdirectory("krustlet-readopt-").FullName;

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_running_pod_keeps_its_phase_when_the_agent_stops_and_restarts_with_one_more_restart_after()
    {
        var root = Root();
        var pod = RunHarness.Pod("server", restartPolicy: "Always", images: ["spin"]);
        await using (var first = new RunHarness(Images(), root: root, saveState: true))
        {
            await first.SubmitAsync(pod, TestContext.CancellationToken);
            await first.WaitForAsync(pod, s => s.Containers[0].Running, TestContext.CancellationToken);
            await first.Pipeline.StopAsync();

            var last = first.Writer.Reports.Final(pod.Metadata.Uid)!.Runtime!;
            Assert.AreEqual(PodPhase.Running, last.Phase, "an agent shutdown is not the pod's failure");
            Assert.AreEqual(ContainerExit.KilledExitCode, ((TerminatedState)last.Containers[0].State).ExitCode);
        }

        await using (var second = new RunHarness(Images(), root: root, saveState: true))
        {
            await second.SubmitAsync(pod, TestContext.CancellationToken);
            var readopted = (await second.WaitForAsync(pod, s => s.Containers[0].Running, TestContext.CancellationToken)).Runtime!;

            Assert.AreEqual(1, readopted.Containers[0].RestartCount);
            Assert.AreEqual("wasm://uid-server/main/1", readopted.Containers[0].ContainerId);
            Assert.AreEqual(ContainerExit.KilledExitCode, readopted.Containers[0].LastState!.ExitCode);
            Assert.AreEqual("The node agent stopped while the container was running.", readopted.Containers[0].LastState!.Message);
            Assert.IsTrue(File.Exists(Path.Combine(second.LogRoot, "default_server_uid-server", "main", "0.log")), "the first run's log is kept for previous=true");
            Assert.IsTrue(File.Exists(Path.Combine(second.LogRoot, "default_server_uid-server", "main", "1.log")));
        }

        Directory.Delete(root, recursive: true);
    }

    /// <summary>
    /// The race behind the flaky readoption test, held open with gates: the worker is stopped right after
    /// it has marked the container Running (what the status stage reads and publishes) and the agent's
    /// stop begins right there. The state file must already hold the run, or the next agent loses it.
    /// </summary>
    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_run_already_shown_Running_is_counted_when_the_agent_stops_before_the_worker_goes_on()
    {
        var root = Root();
        var pod = RunHarness.Pod("server", restartPolicy: "Always", images: ["spin"]);
        using var release = new ManualResetEventSlim();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var first = new RunHarness(Images(), root: root, saveState: true))
        {
            first.Events.OnRecorded = reason =>
            {
                if (reason == "Started")
                {
                    started.TrySetResult();
                    release.Wait(TestContext.CancellationToken); // the worker, held between Running and what follows
                }
                else if (reason == "Killing")
                {
                    release.Set(); // the agent's stop has suspended the pod: let the worker go on
                }
            };
            await first.SubmitAsync(pod, TestContext.CancellationToken);
            await started.Task.WaitAsync(TestContext.CancellationToken);
            Assert.IsTrue(first.Run.Current(pod.Metadata.Uid)!.Containers[0].Running, "the status stage would publish Running now");
            await first.Pipeline.StopAsync();
        }

        await using (var second = new RunHarness(Images(), root: root, saveState: true))
        {
            await second.SubmitAsync(pod, TestContext.CancellationToken);
            var readopted = (await second.WaitForAsync(pod, s => s.Containers[0].Running, TestContext.CancellationToken)).Runtime!;

            Assert.AreEqual(1, readopted.Containers[0].RestartCount, "the run the first agent showed is counted");
            Assert.AreEqual("The node agent stopped while the container was running.", readopted.Containers[0].LastState!.Message);
        }

        Directory.Delete(root, recursive: true);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_finished_pod_stays_finished_and_does_not_run_again()
    {
        var root = Root();
        var pod = RunHarness.Pod("hello");
        DateTimeOffset finishedAt;
        await using (var first = new RunHarness(Images(), root: root, saveState: true))
        {
            await first.SubmitAsync(pod, TestContext.CancellationToken);
            var done = (await first.WaitForAsync(pod, s => s.Phase == PodPhase.Succeeded, TestContext.CancellationToken)).Runtime!;
            finishedAt = ((TerminatedState)done.Containers[0].State).FinishedAt;
        }

        await using (var second = new RunHarness(Images(), root: root, saveState: true))
        {
            await second.SubmitAsync(pod, TestContext.CancellationToken);
            var readopted = (await second.WaitForAsync(pod, s => s.Phase == PodPhase.Succeeded, TestContext.CancellationToken)).Runtime!;

            var terminated = (TerminatedState)readopted.Containers[0].State;
            Assert.AreEqual(finishedAt, terminated.FinishedAt, "the same run, not a new one");
            Assert.AreEqual(0, readopted.Containers[0].RestartCount);
            Assert.IsFalse(File.Exists(Path.Combine(second.LogRoot, "default_hello_uid-hello", "main", "1.log")));
        }

        Directory.Delete(root, recursive: true);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_crash_looping_container_runs_again_at_once_counting_the_restart()
    {
        var root = Root();
        var pod = RunHarness.Pod("crasher", restartPolicy: "OnFailure", images: ["exit-1"]);
        await using (var first = new RunHarness(Images(), root: root, saveState: true))
        {
            await first.SubmitAsync(pod, TestContext.CancellationToken);
            await first.WaitForAsync(pod, s => s.Containers[0].State is WaitingState { Reason: "CrashLoopBackOff" }, TestContext.CancellationToken);
        }

        await using (var second = new RunHarness(Images(), root: root, saveState: true))
        {
            await second.SubmitAsync(pod, TestContext.CancellationToken);
            var again = (await second.WaitForAsync(pod, s => s.Containers[0].RestartCount == 1 && s.Containers[0].State is WaitingState { Reason: "CrashLoopBackOff" }, TestContext.CancellationToken)).Runtime!;
            Assert.AreEqual(1, again.Containers[0].LastState!.ExitCode);
            Assert.IsTrue(File.Exists(Path.Combine(second.LogRoot, "default_crasher_uid-crasher", "main", "1.log")));
        }

        Directory.Delete(root, recursive: true);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_deleted_pod_leaves_no_state_and_a_torn_state_file_starts_the_pod_afresh()
    {
        var root = Root();
        var pod = RunHarness.Pod("hello");
        await using (var harness = new RunHarness(Images(), root: root, saveState: true))
        {
            await harness.SubmitAsync(pod, TestContext.CancellationToken);
            await harness.WaitForAsync(pod, s => s.Phase == PodPhase.Succeeded, TestContext.CancellationToken);
            Assert.IsNotNull(harness.State!.Load(pod.Metadata.Uid));
            await harness.DeleteAsync(pod, TestContext.CancellationToken);
            await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.IsFinal, TestContext.CancellationToken);
            Assert.IsNull(harness.State.Load(pod.Metadata.Uid));
        }

        var logs = new Microsoft.Extensions.Logging.Testing.FakeLogger();
        var store = new PodStateStore(Path.Combine(root, "state"), logs);
        File.WriteAllText(Path.Combine(store.Root, "uid-hello.json"), "{\"Uid\":\"uid-hel");
        Assert.IsNull(store.Load("uid-hello"));
        Assert.IsFalse(File.Exists(Path.Combine(store.Root, "uid-hello.json")), "a torn file is discarded");
        var warning = logs.Collector.GetSnapshot().Single();
        Assert.AreEqual(Microsoft.Extensions.Logging.LogLevel.Warning, warning.Level);
        StringAssert.Contains(warning.Message, "uid-hello.json");
        Assert.IsNull(store.Load("uid-hello"));
        Assert.AreEqual(1, logs.Collector.Count, "logged once: the file is gone after it");
        Assert.ThrowsExactly<ArgumentException>(() => store.Load("../escape"));

        // A state file that is a link is neither read nor written through.
        var elsewhere = Path.Combine(root, "elsewhere.json");
        File.WriteAllText(elsewhere, "{}");
        File.CreateSymbolicLink(Path.Combine(store.Root, "uid-linked.json"), elsewhere);
        Assert.IsNull(store.Load("uid-linked"));
        Assert.ThrowsExactly<UnsafePathException>(() => store.Save(new SavedPod("uid-linked", "default", "linked", DateTimeOffset.UnixEpoch, [], [])));
        Assert.AreEqual("{}", File.ReadAllText(elsewhere));
        Directory.Delete(root, recursive: true);
    }
}
