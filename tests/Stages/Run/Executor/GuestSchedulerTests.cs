using System.Collections.Concurrent;
using Krustlet.Stages.Run.Executor;

namespace Krustlet.Stages.Tests.Run.Executor;

/// <summary>
/// The M:N scheduler with guests that stand in for Wasmtime call futures: parked guests hold no thread,
/// no wake is lost whatever the order, a spinner cannot starve a woken guest, and a failing guest is its
/// own failure.
/// </summary>
[TestClass]
public sealed class GuestSchedulerTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>A guest driven by a script of polls: each entry is what that poll returns, and an optional action run during it.</summary>
    private sealed class ScriptedGuest(params (GuestPoll Result, Action<GuestHandle>? During)[] script) : IGuest
    {
        private int _next;

        public List<int> PolledOnThreads { get; } = [];

        public bool Disposed { get; private set; }

        public GuestPoll Poll(GuestHandle handle)
        {
            PolledOnThreads.Add(Environment.CurrentManagedThreadId);
            var (result, during) = script[Math.Min(_next++, script.Length - 1)];
            during?.Invoke(handle);
            return result;
        }

        public void Dispose() => Disposed = true;
    }

    /// <summary>Parks at every poll until told it is done; counts its polls into a shared log.</summary>
    private sealed class Sleeper(string name, ConcurrentQueue<string> log) : IGuest
    {
        public volatile bool Finished;

        public GuestPoll Poll(GuestHandle handle)
        {
            log.Enqueue(name);
            return Finished ? GuestPoll.Done : GuestPoll.Parked;
        }

        public void Dispose()
        {
        }
    }

    /// <summary>Never parks: every poll is a used-up slice, until stopped.</summary>
    private sealed class Spinner(string name, ConcurrentQueue<string> log) : IGuest
    {
        public volatile bool Stop;

        /// <summary>Run during the spinner's tenth poll: a timer that fires while the spinner holds the thread.</summary>
        public Action? AtTenthPoll { get; set; }

        private int _polls;

        public GuestPoll Poll(GuestHandle handle)
        {
            log.Enqueue(name);
            if (++_polls == 10)
            {
                log.Enqueue("wake");
                AtTenthPoll?.Invoke();
            }

            return Stop ? GuestPoll.Done : GuestPoll.Yielded;
        }

        public void Dispose()
        {
        }
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_guest_that_yields_is_polled_again_until_it_is_done_and_then_disposed()
    {
        using var scheduler = new GuestScheduler(threads: 2);
        var guest = new ScriptedGuest((GuestPoll.Yielded, null), (GuestPoll.Yielded, null), (GuestPoll.Done, null));
        var (handle, done) = scheduler.Start(guest);
        await done.WaitAsync(TestContext.CancellationToken);
        Assert.AreEqual(3, handle.Polls);
        Assert.IsTrue(guest.Disposed);
        Assert.AreEqual(0, scheduler.Guests);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Two_thousand_parked_guests_hold_no_thread_and_all_finish_when_woken()
    {
        using var scheduler = new GuestScheduler(threads: 2);
        var log = new ConcurrentQueue<string>();
        var sleepers = Enumerable.Range(0, 2000).Select(i => new Sleeper($"s{i}", log)).ToList();
        var started = sleepers.Select(scheduler.Start).ToList();

        // Each is polled once and parks. Wait for that through the log, not through time.
        while (scheduler.ParkedGuests < 2000)
        {
            await Task.Yield();
            TestContext.CancellationToken.ThrowIfCancellationRequested();
        }

        Assert.AreEqual(2, scheduler.Threads, "the threads are the scheduler's, whatever the number of guests");
        Assert.AreEqual(2000, scheduler.Guests);
        Assert.HasCount(2000, log, "a parked guest is not polled again until woken");

        foreach (var (sleeper, (handle, _)) in sleepers.Zip(started))
        {
            sleeper.Finished = true;
            handle.Wake();
        }

        await Task.WhenAll(started.Select(s => s.Completion)).WaitAsync(TestContext.CancellationToken);
        Assert.AreEqual(0, scheduler.ParkedGuests);
        Assert.HasCount(4000, log);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_wake_that_comes_while_the_guest_runs_is_not_lost()
    {
        using var scheduler = new GuestScheduler(threads: 1);

        // The guest's timer fires during the very poll that parks it (before Poll returns).
        var guest = new ScriptedGuest((GuestPoll.Parked, h => h.Wake()), (GuestPoll.Done, null));
        var (handle, done) = scheduler.Start(guest);
        await done.WaitAsync(TestContext.CancellationToken);
        Assert.AreEqual(2, handle.Polls);
        Assert.AreEqual(0, scheduler.ParkedGuests);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Waking_a_queued_or_finished_guest_changes_nothing()
    {
        using var scheduler = new GuestScheduler(threads: 1);
        var guest = new ScriptedGuest((GuestPoll.Done, h => h.Wake()));
        var (handle, done) = scheduler.Start(guest);
        handle.Wake();
        await done.WaitAsync(TestContext.CancellationToken);
        handle.Wake();
        Assert.AreEqual(1, handle.Polls);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task One_spinner_per_thread_delays_a_woken_guest_by_at_most_a_slice_per_spinner()
    {
        using var scheduler = new GuestScheduler(threads: 1);
        var log = new ConcurrentQueue<string>();
        var sleeper = new Sleeper("ticker", log);
        var (tickerHandle, tickerDone) = scheduler.Start(sleeper);
        while (scheduler.ParkedGuests < 1)
        {
            await Task.Yield();
        }

        // The ticker's timer fires while the spinner holds the only thread.
        var spinner = new Spinner("spin", log)
        {
            AtTenthPoll = () =>
            {
                sleeper.Finished = true;
                tickerHandle.Wake();
            },
        };
        var (_, spinnerDone) = scheduler.Start(spinner);
        await tickerDone.WaitAsync(TestContext.CancellationToken);
        var after = log.ToArray().SkipWhile(l => l != "wake").Skip(1).ToArray();
        var tickerAt = Array.IndexOf(after, "ticker");
        Assert.IsTrue(tickerAt is >= 0 and <= 1, $"the ticker ran after {tickerAt} more spinner slices: {string.Join(",", after.Take(5))}");

        spinner.Stop = true;
        await spinnerDone.WaitAsync(TestContext.CancellationToken);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_guest_whose_poll_throws_fails_alone_and_the_others_go_on()
    {
        using var scheduler = new GuestScheduler(threads: 1);
        var failing = new ScriptedGuest((GuestPoll.Yielded, null), (GuestPoll.Done, _ => throw new InvalidOperationException("the guest's own failure")));
        var fine = new ScriptedGuest((GuestPoll.Yielded, null), (GuestPoll.Yielded, null), (GuestPoll.Done, null));
        var (_, failed) = scheduler.Start(failing);
        var (_, finished) = scheduler.Start(fine);

        var error = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => failed.WaitAsync(TestContext.CancellationToken));
        Assert.AreEqual("the guest's own failure", error.Message);
        await finished.WaitAsync(TestContext.CancellationToken);
        Assert.IsTrue(failing.Disposed);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Stopping_the_scheduler_disposes_the_guests_left_and_cancels_their_tasks()
    {
        var scheduler = new GuestScheduler(threads: 1);
        var parked = new ScriptedGuest((GuestPoll.Parked, null));
        var (handle, task) = scheduler.Start(parked);
        while (scheduler.ParkedGuests < 1)
        {
            await Task.Yield();
        }

        scheduler.Dispose();
        await Assert.ThrowsExactlyAsync<TaskCanceledException>(() => task.WaitAsync(TestContext.CancellationToken));
        Assert.IsTrue(parked.Disposed);
        handle.Wake(); // a timer that fires afterwards finds nothing to do
        Assert.ThrowsExactly<ObjectDisposedException>(() => scheduler.Start(new ScriptedGuest((GuestPoll.Done, null))));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Real_clock_wakeups_fire_on_the_executor_threads_in_the_order_they_fall_due()
    {
        using var scheduler = new GuestScheduler(threads: 1, name: "wakeup-test");
        var order = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var later = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sooner = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        string? thread = null;

        scheduler.WakeAfter(TimeSpan.FromMilliseconds(30), () => { order.Enqueue("later"); later.TrySetResult(); });
        scheduler.WakeAfter(TimeSpan.Zero, () => { thread = Thread.CurrentThread.Name; order.Enqueue("sooner"); sooner.TrySetResult(); });
        await Task.WhenAll(sooner.Task, later.Task).WaitAsync(TestContext.CancellationToken);

        CollectionAssert.AreEqual(new[] { "sooner", "later" }, order.ToArray());
        Assert.AreEqual("wakeup-test-0", thread, "the executor's own thread fired it");
        Assert.AreEqual(0, scheduler.PendingWakeups);
    }
}
