using System.Globalization;
using Krustlet.Stages.Compile;
using Krustlet.Stages.Run;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Stages.Tests.Run.Executor;

/// <summary>
/// Real C guests on the M:N executor: a guest that sleeps parks in the shim's poll_oneoff on a timer of
/// the injected clock and holds no thread; kills and deadlines reach it at once; a full pool refuses with
/// a reason; a spinning guest does not starve a sleeping one on a single executor thread.
/// </summary>
[TestClass]
public sealed class ExecutorTests
{
    private string _root = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void CreateRoot() => _root = Directory.CreateTempSubdirectory("krustlet-executor-").FullName;

    [TestCleanup]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private async Task<CompiledArtifact> Compile(WasmEngineHost host, string path) =>
        await new CompileCache(host, Path.Combine(_root, "cache")).GetAsync(WasmFixtures.Digest(path), path, TestContext.CancellationToken);

    private ContainerLaunch Launch(CompiledArtifact artifact, string name, params string[] args) =>
        new(name, artifact, [name, .. args], [], [], null, Path.Combine(_root, "logs", $"{name}.log"), LogRotationOptions.Default);

    private static string[] Stdout(string logPath) =>
        [.. File.ReadAllLines(logPath).Select(l => l.Split(' ', 4)).Where(p => p[1] == "stdout").Select(p => p[3])];

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task Two_thousand_sleeping_guests_hold_no_thread_and_are_all_killed_at_once()
    {
        const int guests = 2000;
        using var host = new WasmEngineHost(new WasmEngineOptions { PoolSlots = guests + 10 });
        var time = new CountingTimeProvider();
        using var pool = new ExecutorPool(host, guests + 10, time);
        var artifact = await Compile(host, WasmFixtures.C("sleeper"));
        Assert.AreEqual(ExitKind.Exited, (await pool.RunAsync(Launch(artifact, "warm", "0", "1"), new ContainerControl(time), TestContext.CancellationToken)).Kind);
        var before = ThreadsOfThisProcess();
        var descriptorsBefore = Directory.GetFileSystemEntries("/proc/self/fd").Length;

        var controls = Enumerable.Range(0, guests).Select(_ => new ContainerControl(time)).ToArray();
        var parked = time.WhenTimers(guests); // each guest arms one timer when it parks in nanosleep
        var runs = controls.Select((control, i) => pool.RunAsync(Launch(artifact, $"s{i}", "3600", "1"), control, TestContext.CancellationToken)).ToArray();
        await parked.WaitAsync(TestContext.CancellationToken);

        var during = ThreadsOfThisProcess();
        Assert.AreEqual(guests, pool.LiveGuests);
        Assert.AreEqual(guests, host.Native.Scheduler.ParkedGuests, "every guest is parked in its sleep");
        Assert.IsTrue(during - before <= host.Native.Scheduler.Threads + 4, $"threads: {before} with one finished guest, {during} with {guests} sleeping");
        var descriptors = Directory.GetFileSystemEntries("/proc/self/fd").Length;
        Assert.IsTrue(descriptors - descriptorsBefore < 100, $"file descriptors: {descriptorsBefore} before, {descriptors} with {guests} sleeping (a long sleep closes the guest's log)");

        // The clock never moves: each kill has to wake its parked guest itself.
        foreach (var control in controls)
        {
            control.Kill(KillCause.Stopped("the pod is being deleted"));
        }

        var exits = await Task.WhenAll(runs);
        Assert.IsTrue(exits.All(e => e.Kind == ExitKind.Killed && e.Message == "killed: the pod is being deleted"));
        Assert.AreEqual(0, pool.LiveGuests);
        Assert.AreEqual(0, host.Native.Scheduler.Guests);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_sleep_is_a_timer_on_the_injected_clock()
    {
        using var host = new WasmEngineHost(new WasmEngineOptions());
        var time = new CountingTimeProvider();
        using var pool = new ExecutorPool(host, 4, time);
        var launch = Launch(await Compile(host, WasmFixtures.C("sleeper")), "sleeper", "5", "2");

        var first = time.WhenTimers(1);
        var run = pool.RunAsync(launch, new ContainerControl(time), TestContext.CancellationToken);
        await first.WaitAsync(TestContext.CancellationToken);
        Assert.IsFalse(run.IsCompleted, "the guest sleeps until the clock moves");

        var second = time.WhenTimers(2);
        time.Advance(TimeSpan.FromSeconds(5));
        await second.WaitAsync(TestContext.CancellationToken);
        Assert.IsFalse(run.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(5));

        var exit = await run;
        Assert.AreEqual(ExitKind.Exited, exit.Kind);
        Assert.AreEqual(0, exit.ExitCode);
        CollectionAssert.AreEqual(new[] { "slept 0", "slept 1" }, Stdout(launch.LogPath));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_deadline_reaches_a_parked_guest_when_it_falls_due()
    {
        using var host = new WasmEngineHost(new WasmEngineOptions());
        var time = new CountingTimeProvider();
        using var pool = new ExecutorPool(host, 4, time);
        var control = new ContainerControl(time, time.GetUtcNow().AddSeconds(30));
        var parked = time.WhenTimers(2); // the deadline's timer and the sleep's

        var run = pool.RunAsync(Launch(await Compile(host, WasmFixtures.C("sleeper")), "sleeper", "3600", "1"), control, TestContext.CancellationToken);
        await parked.WaitAsync(TestContext.CancellationToken);
        Assert.IsFalse(run.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(30));

        var exit = await run;
        Assert.AreEqual(ExitKind.Killed, exit.Kind);
        StringAssert.StartsWith(exit.Message, "killed: DeadlineExceeded");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_full_pool_refuses_the_next_container_with_a_reason_and_serves_again_once_a_slot_frees()
    {
        using var host = new WasmEngineHost(new WasmEngineOptions { PoolSlots = 1 });
        var time = new CountingTimeProvider();
        using var pool = new ExecutorPool(host, 4, time);
        var artifact = await Compile(host, WasmFixtures.C("sleeper"));
        var holder = new ContainerControl(time);
        var parked = time.WhenTimers(1);
        var holding = pool.RunAsync(Launch(artifact, "holder", "3600", "1"), holder, TestContext.CancellationToken);
        await parked.WaitAsync(TestContext.CancellationToken);

        var refused = await pool.RunAsync(Launch(artifact, "refused", "0", "1"), new ContainerControl(time), TestContext.CancellationToken);

        Assert.AreEqual(ExitKind.FailedToStart, refused.Kind);
        Assert.AreEqual("StartError", refused.Reason);
        StringAssert.StartsWith(refused.Message, "the node's Wasmtime pool is full (1 slots, Wasm:PoolSlots)");
        Assert.IsFalse(holding.IsCompleted, "the guest holding the slot runs on");

        holder.Kill(KillCause.Stopped("done"));
        Assert.AreEqual(ExitKind.Killed, (await holding).Kind);
        var after = await pool.RunAsync(Launch(artifact, "after", "0", "1"), new ContainerControl(time), TestContext.CancellationToken);
        Assert.AreEqual(ExitKind.Exited, after.Kind);
        Assert.AreEqual(0, after.ExitCode);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_spinning_guest_does_not_starve_a_sleeping_one_on_a_single_executor_thread()
    {
        using var host = new WasmEngineHost(new WasmEngineOptions { ExecutorThreads = 1 });
        var time = new CountingTimeProvider();
        using var pool = new ExecutorPool(host, 4, time);
        var spinnerControl = new ContainerControl(time);
        var spinner = pool.RunAsync(Launch(await Compile(host, WasmFixtures.Wat(Wat.InfiniteLoop)), "spinner"), spinnerControl, TestContext.CancellationToken);
        var sleeperLaunch = Launch(await Compile(host, WasmFixtures.C("sleeper")), "sleeper", "1", "5", "20");

        var sleeper = pool.RunAsync(sleeperLaunch, new ContainerControl(time), TestContext.CancellationToken);
        for (var i = 1; i <= 5; i++)
        {
            // Each sleep parks on a new timer: the guest got the only thread back from the spinner.
            await time.WhenTimers(i).WaitAsync(TestContext.CancellationToken);
            time.Advance(TimeSpan.FromSeconds(1));
        }

        var exit = await sleeper;
        Assert.AreEqual(ExitKind.Exited, exit.Kind);
        CollectionAssert.AreEqual(new[] { "slept 0", "slept 1", "slept 2", "slept 3", "slept 4", "yielded" }, Stdout(sleeperLaunch.LogPath));
        Assert.IsFalse(spinner.IsCompleted, "the spinner shared the thread and is still running");
        spinnerControl.Kill(KillCause.Stopped("done"));
        Assert.AreEqual(ExitKind.Killed, (await spinner).Kind);
    }

    [TestMethod]
    public void A_pool_the_kernel_cannot_map_is_refused_at_start_with_every_problem()
    {
        var layout = Krustlet.Stages.Run.Executor.ExecutorEngine.ExecutorLayout.For(new WasmEngineOptions { PoolSlots = 1_000_000, ExecutorThreads = -1 });

        Assert.IsTrue(layout.Problems.Any(p => p.Contains("TiB of address space", StringComparison.Ordinal)), string.Join(" | ", layout.Problems));
        Assert.IsTrue(layout.Problems.Any(p => p.Contains("vm.max_map_count", StringComparison.Ordinal)), string.Join(" | ", layout.Problems));
        Assert.IsTrue(layout.Problems.Any(p => p.Contains("Wasm:ExecutorThreads", StringComparison.Ordinal)), string.Join(" | ", layout.Problems));
        var refused = Assert.ThrowsExactly<ArgumentException>(() => new WasmEngineHost(new WasmEngineOptions { PoolSlots = 1_000_000 }));
        StringAssert.Contains(refused.Message, "vm.max_map_count");
    }

    private static int ThreadsOfThisProcess() =>
        int.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("Threads:", StringComparison.Ordinal))["Threads:".Length..].Trim(), CultureInfo.InvariantCulture);

    /// <summary>A fake clock that completes a gate once a given number of timers have been created.</summary>
    private sealed class CountingTimeProvider : FakeTimeProvider
    {
        private readonly Lock _lock = new();
        private readonly List<(int Count, TaskCompletionSource Gate)> _waiters = [];
        private int _created;

        public Task WhenTimers(int count)
        {
            lock (_lock)
            {
                if (_created >= count)
                {
                    return Task.CompletedTask;
                }

                var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((count, gate));
                return gate.Task;
            }
        }

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = base.CreateTimer(callback, state, dueTime, period);
            List<TaskCompletionSource> due;
            lock (_lock)
            {
                _created++;
                due = [.. _waiters.Where(w => w.Count <= _created).Select(w => w.Gate)];
                _waiters.RemoveAll(w => w.Count <= _created);
            }

            due.ForEach(g => g.TrySetResult());
            return timer;
        }
    }
}
