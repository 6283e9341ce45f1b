using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.Run;

/// <summary>Pods through the real compile and run stages: restart policy, backoff on a fake clock, init containers, phases, deletion.</summary>
[TestClass]
public sealed class RunStageTests
{
    public TestContext TestContext { get; set; } = null!;

    private static Dictionary<string, string> Images() => new()
    {
        ["hello"] = WasmFixtures.C("hello"),
        ["exit-0"] = WasmFixtures.Wat(Wat.Exit(0)),
        ["exit-1"] = WasmFixtures.Wat(Wat.Exit(1)),
        ["spin"] = WasmFixtures.Wat(Wat.InfiniteLoop),
        ["trap"] = WasmFixtures.Wat(Wat.Unreachable),
        ["invalid"] = WasmFixtures.File([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0xFF]),
    };

    private static ContainerStatusSnapshot First(PodRuntimeStatus status) => status.Containers[0];

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_pod_that_runs_to_completion_succeeds_with_a_completed_container_and_its_log()
    {
        await using var harness = new RunHarness(Images());
        var pod = RunHarness.Pod("hello");

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        var done = (await harness.WaitForAsync(pod, s => s.Phase == PodPhase.Succeeded, TestContext.CancellationToken)).Runtime!;

        var terminated = (TerminatedState)First(done).State;
        Assert.AreEqual(0, terminated.ExitCode);
        Assert.AreEqual("Completed", terminated.Reason);
        Assert.AreEqual("wasm://uid-hello/main/0", terminated.ContainerId);
        Assert.AreEqual(0, First(done).RestartCount);
        Assert.AreEqual(WasmFixtures.Digest(WasmFixtures.C("hello")), First(done).ImageId);
        var stdout = File.ReadAllLines(Path.Combine(harness.LogRoot, "default_hello_uid-hello", "main", "0.log")).Where(l => l.Contains(" stdout F ", StringComparison.Ordinal)).ToArray();
        StringAssert.EndsWith(stdout[0], "stdout F hello from wasm");
        StringAssert.EndsWith(stdout[1], "stdout F argv[0]=hello.wasm", "argv[0] is the module's name when no command is given");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task OnFailure_restarts_a_failing_container_with_doubling_backoff_and_counts_restarts()
    {
        await using var harness = new RunHarness(Images());
        var pod = RunHarness.Pod("crasher", restartPolicy: "OnFailure", images: ["exit-1"]);

        var timer = harness.Time.NextTimer;
        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        var backingOff = (await harness.WaitForAsync(pod, s => First(s).State is WaitingState { Reason: "CrashLoopBackOff" }, TestContext.CancellationToken)).Runtime!;

        Assert.AreEqual(PodPhase.Running, backingOff.Phase, "a crash-looping pod is Running");
        StringAssert.StartsWith(((WaitingState)First(backingOff).State).Message, "back-off 10s restarting failed container=main pod=crasher_default(uid-crasher)");
        Assert.AreEqual(1, First(backingOff).LastState!.ExitCode);
        Assert.AreEqual(0, First(backingOff).RestartCount);

        await timer.WaitAsync(TestContext.CancellationToken);
        timer = harness.Time.NextTimer;
        harness.Time.Advance(TimeSpan.FromSeconds(10));
        var second = (await harness.WaitForAsync(pod, s => First(s).RestartCount == 1 && First(s).State is WaitingState { Reason: "CrashLoopBackOff" }, TestContext.CancellationToken)).Runtime!;
        StringAssert.StartsWith(((WaitingState)First(second).State).Message, "back-off 20s");
        Assert.AreEqual("wasm://uid-crasher/main/1", First(second).LastState!.ContainerId);

        await timer.WaitAsync(TestContext.CancellationToken);
        harness.Time.Advance(TimeSpan.FromSeconds(20));
        var third = (await harness.WaitForAsync(pod, s => First(s).RestartCount == 2 && First(s).State is WaitingState, TestContext.CancellationToken)).Runtime!;
        StringAssert.StartsWith(((WaitingState)First(third).State).Message, "back-off 40s");
        Assert.IsTrue(File.Exists(Path.Combine(harness.LogRoot, "default_crasher_uid-crasher", "main", "1.log")), "each run keeps its own log");
        var events = harness.Events.All.Where(e => e.Pod == "crasher").ToList();
        Assert.AreEqual(3, events.Count(e => e.Reason == "Started"));
        Assert.IsTrue(events.Any(e => e.Warning && e.Reason == "BackOff" && e.Message == "Back-off restarting failed container main in pod crasher_default(uid-crasher)"));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task OnFailure_does_not_restart_a_container_that_succeeded()
    {
        await using var harness = new RunHarness(Images());
        var pod = RunHarness.Pod("job", restartPolicy: "OnFailure", images: ["exit-0"]);

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        var done = (await harness.WaitForAsync(pod, s => s.Phase == PodPhase.Succeeded, TestContext.CancellationToken)).Runtime!;

        Assert.AreEqual(0, First(done).RestartCount);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Always_restarts_even_a_successful_container()
    {
        await using var harness = new RunHarness(Images());
        var pod = RunHarness.Pod("service", restartPolicy: "Always", images: ["exit-0"]);

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        var waiting = (await harness.WaitForAsync(pod, s => First(s).State is WaitingState { Reason: "CrashLoopBackOff" }, TestContext.CancellationToken)).Runtime!;

        Assert.AreEqual(PodPhase.Running, waiting.Phase);
        Assert.AreEqual("Completed", First(waiting).LastState!.Reason);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow("exit-1", 1, "Error")]
    [DataRow("trap", 134, "Error")]
    public async Task Never_leaves_a_failed_container_terminated_and_the_pod_failed(string image, int exitCode, string reason)
    {
        await using var harness = new RunHarness(Images());
        var pod = RunHarness.Pod("once", images: [image]);

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        var failed = (await harness.WaitForAsync(pod, s => s.Phase == PodPhase.Failed, TestContext.CancellationToken)).Runtime!;

        var terminated = (TerminatedState)First(failed).State;
        Assert.AreEqual(exitCode, terminated.ExitCode);
        Assert.AreEqual(reason, terminated.Reason);
        Assert.AreEqual(0, First(failed).RestartCount);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Init_containers_run_in_order_before_the_app_containers()
    {
        await using var harness = new RunHarness(Images());
        var pod = RunHarness.Pod("with-init", initImages: ["exit-0", "hello"], images: ["hello", "exit-0"]);

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        var done = (await harness.WaitForAsync(pod, s => s.Phase == PodPhase.Succeeded, TestContext.CancellationToken)).Runtime!;

        Assert.IsTrue(done.InitContainers.All(c => c.State is TerminatedState { ExitCode: 0 }));
        var lastInitEnd = done.InitContainers.Max(c => ((TerminatedState)c.State).FinishedAt);
        Assert.IsTrue(done.Containers.All(c => ((TerminatedState)c.State).StartedAt >= lastInitEnd), "app containers start after every init container");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_failing_init_container_fails_the_pod_under_Never_and_the_app_never_starts()
    {
        await using var harness = new RunHarness(Images());
        var pod = RunHarness.Pod("bad-init", initImages: ["exit-1"], images: ["hello"]);

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        var failed = (await harness.WaitForAsync(pod, s => s.Phase == PodPhase.Failed, TestContext.CancellationToken)).Runtime!;

        Assert.AreEqual(1, ((TerminatedState)failed.InitContainers[0].State).ExitCode);
        Assert.AreEqual(new WaitingState("PodInitializing", null), First(failed).State);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_failing_init_container_restarts_with_backoff_under_OnFailure_and_the_pod_stays_pending()
    {
        await using var harness = new RunHarness(Images());
        var pod = RunHarness.Pod("retry-init", restartPolicy: "OnFailure", initImages: ["exit-1"], images: ["hello"]);

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        var waiting = (await harness.WaitForAsync(pod, s => s.InitContainers[0].State is WaitingState { Reason: "CrashLoopBackOff" }, TestContext.CancellationToken)).Runtime!;

        Assert.AreEqual(PodPhase.Pending, waiting.Phase);
        Assert.AreEqual(new WaitingState("PodInitializing", null), First(waiting).State, "the app container waits for the init containers");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Deleting_a_running_pod_kills_its_spinning_containers_and_frees_their_slots()
    {
        await using var harness = new RunHarness(Images());
        var pod = RunHarness.Pod("spinner", restartPolicy: "Always", images: ["spin", "spin"]);

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        await harness.WaitForAsync(pod, s => s.Phase == PodPhase.Running && s.Containers.All(c => c.Running), TestContext.CancellationToken);
        // A run is reported Running just before its guest is started on the executor: wait for both
        // guests (the test's timeout bounds it).
        while (harness.Pool.LiveGuests < 2)
        {
            await Task.Delay(1, TestContext.CancellationToken);
        }

        Assert.AreEqual(2, harness.Pool.LiveGuests);

        await harness.DeleteAsync(pod, TestContext.CancellationToken);
        var final = await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Kind == PodReportKind.Deleted, TestContext.CancellationToken);

        Assert.AreEqual(PodReportOrigin.Pipeline, final.Origin);
        Assert.AreEqual(0, harness.Pool.Running);
        Assert.AreEqual(0, harness.Pool.LiveGuests);
        Assert.AreEqual(0, harness.Run.Pods);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task The_active_deadline_kills_the_pod_and_fails_it()
    {
        await using var harness = new RunHarness(Images());
        var pod = RunHarness.Pod("deadline", restartPolicy: "Always", images: ["spin"], activeDeadlineSeconds: 60);

        await harness.SubmitAsync(pod, TestContext.CancellationToken);
        await harness.WaitForAsync(pod, s => First(s).Running, TestContext.CancellationToken);
        harness.Time.Advance(TimeSpan.FromSeconds(60));
        var failed = (await harness.WaitForAsync(pod, s => s.Phase == PodPhase.Failed, TestContext.CancellationToken)).Runtime!;

        Assert.AreEqual("DeadlineExceeded", failed.Reason);
        var terminated = (TerminatedState)First(failed).State;
        Assert.AreEqual(ContainerExit.KilledExitCode, terminated.ExitCode);
        StringAssert.StartsWith(terminated.Message, "killed: DeadlineExceeded");
        Assert.AreEqual(0, First(failed).RestartCount, "no restart after the deadline");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Invalid_wasm_fails_that_pod_with_CreateContainerError_and_other_pods_run()
    {
        await using var harness = new RunHarness(Images());
        var bad = RunHarness.Pod("bad", images: ["invalid"]);
        var good = RunHarness.Pod("good");

        await harness.SubmitAsync(bad, TestContext.CancellationToken);
        await harness.SubmitAsync(good, TestContext.CancellationToken);
        var failed = await harness.Writer.WaitForAsync(bad.Metadata.Uid, r => r.Kind == PodReportKind.Failed, TestContext.CancellationToken);
        await harness.WaitForAsync(good, s => s.Phase == PodPhase.Succeeded, TestContext.CancellationToken);

        Assert.AreEqual("CreateContainerError", failed.Reason);
        Assert.AreEqual(PodPhase.Pending, failed.Runtime!.Phase, "the kubelet leaves such a pod Pending");
        var waiting = (WaitingState)First(failed.Runtime).State;
        Assert.AreEqual("CreateContainerError", waiting.Reason);
        Assert.AreEqual(failed.Message, waiting.Message);
        StringAssert.StartsWith(failed.Message, "Compile: container main: image invalid: WebAssembly module 'sha256:");
        StringAssert.Contains(failed.Message, "unexpected end-of-file");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_second_pod_with_the_same_module_skips_compilation()
    {
        await using var harness = new RunHarness(Images());
        var first = RunHarness.Pod("first");
        var second = RunHarness.Pod("second");

        await harness.SubmitAsync(first, TestContext.CancellationToken);
        await harness.WaitForAsync(first, s => s.Phase == PodPhase.Succeeded, TestContext.CancellationToken);
        await harness.SubmitAsync(second, TestContext.CancellationToken);
        await harness.WaitForAsync(second, s => s.Phase == PodPhase.Succeeded, TestContext.CancellationToken);

        Assert.AreEqual(1, harness.Cache.Compiles);
        Assert.AreEqual(1, harness.Cache.MemoryHits);
    }

    [TestMethod]
    public void Backoff_doubles_to_the_cap_and_resets_after_a_long_clean_run()
    {
        var backoff = new RestartBackoff(new RestartBackoffOptions());
        var delays = Enumerable.Range(0, 7).Select(_ => backoff.Next(TimeSpan.FromSeconds(1)).TotalSeconds).ToArray();

        CollectionAssert.AreEqual(new double[] { 10, 20, 40, 80, 160, 300, 300 }, delays);
        Assert.AreEqual(TimeSpan.FromSeconds(10), backoff.Next(TimeSpan.FromMinutes(10)));
        Assert.AreEqual(TimeSpan.FromSeconds(20), backoff.Next(TimeSpan.FromSeconds(1)));
        backoff.Reset();
        Assert.AreEqual(TimeSpan.FromSeconds(10), backoff.Next(TimeSpan.Zero), "a reset starts over");
    }

    [TestMethod]
    [DataRow(new[] { "run.wasm", "-v" }, new[] { "x" }, new string[0], new string[0], "m.wasm", new[] { "run.wasm", "-v", "x" })]
    [DataRow(null, new[] { "x" }, new[] { "/app.wasm" }, new[] { "default" }, "m.wasm", new[] { "/app.wasm", "x" })]
    [DataRow(null, null, new[] { "/app.wasm" }, new[] { "default" }, "m.wasm", new[] { "/app.wasm", "default" })]
    [DataRow(null, null, new string[0], new[] { "a", "b" }, "m.wasm", new[] { "m.wasm", "a", "b" })]
    [DataRow(null, new[] { "x" }, new string[0], new[] { "a" }, "m.wasm", new[] { "m.wasm", "x" })]
    public void Argv_combines_command_and_args_with_the_image_as_Kubernetes_does(string[]? command, string[]? args, string[] entrypoint, string[] cmd, string module, string[] expected)
    {
        var container = new k8s.Models.V1Container { Name = "c", Command = command, Args = args };

        var argv = ContainerCommand.Argv(container, new Krustlet.Stages.ImagePull.ImageDefaults(entrypoint, cmd, [], null), module);

        CollectionAssert.AreEqual(expected, argv.ToArray());
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_container_stopped_while_it_waits_for_an_executor_slot_ends_killed_not_left_running()
    {
        await using var harness = new RunHarness(Images(), slots: 1);
        var holder = RunHarness.Pod("holder", restartPolicy: "Always", images: ["spin"]);
        var waiter = RunHarness.Pod("waiter", restartPolicy: "Always", images: ["spin"]);
        await harness.SubmitAsync(holder, TestContext.CancellationToken);
        await harness.WaitForAsync(holder, s => First(s).Running, TestContext.CancellationToken);

        // The only slot is taken: the waiter is reported Running but its guest waits for the slot.
        await harness.SubmitAsync(waiter, TestContext.CancellationToken);
        await harness.WaitForAsync(waiter, s => First(s).Running, TestContext.CancellationToken);
        Assert.AreEqual(1, harness.Pool.Running);

        await harness.DeleteAsync(waiter, TestContext.CancellationToken);
        var final = (await harness.Writer.WaitForAsync(waiter.Metadata.Uid, r => r.IsFinal, TestContext.CancellationToken)).Runtime!;

        var terminated = (TerminatedState)First(final).State;
        Assert.AreEqual(ContainerExit.KilledExitCode, terminated.ExitCode);
        StringAssert.StartsWith(terminated.Message, "killed: the pod is being deleted");
    }
}
