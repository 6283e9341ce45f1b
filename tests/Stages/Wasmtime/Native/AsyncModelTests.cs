using System.Buffers.Binary;
using Krustlet.Stages.Wasmtime.Native;

namespace Krustlet.Stages.Tests.Wasmtime.Native;

/// <summary>
/// The async model an M:N executor needs, from .NET: guests yield at epoch deadlines and park in async host
/// functions; a parked guest holds no thread; one InstancePre serves many stores; the pooling allocator
/// supplies (and bounds) instances.
/// </summary>
[TestClass]
public sealed class AsyncModelTests
{
    private static readonly NativeEngine Engine = new(new NativeEngineOptions());

    public TestContext TestContext { get; set; } = null!;

    private static NativeStore NewStore(NativeEngine? engine = null)
    {
        var store = new NativeStore(engine ?? Engine);
        store.SetEpochDeadline(1);
        store.YieldAtEpochDeadline(1);
        return store;
    }

    [TestMethod]
    public void A_guest_yields_at_an_epoch_deadline_and_the_next_poll_continues_where_it_stopped()
    {
        using var module = NativeModule.Compile(Engine, NativeGuests.Wat(NativeGuests.Spinner));
        using var linker = new NativeLinker(Engine);
        using var pre = linker.Prepare(module);
        using var store = NewStore();
        var instance = NativeGuests.Instantiate(pre, store);
        using var future = store.CallAsync(instance.GetFunction("run")!, [1_000_000], 1);

        Engine.IncrementEpoch(); // the deadline (one tick) has passed before the guest starts
        Assert.IsFalse(future.Poll(), "the guest yields at its first epoch check");
        Assert.IsNull(future.ParkedOn, "an epoch yield parks on no host call");
        Assert.IsTrue(future.Poll(), "the deadline moved one tick on, so the guest runs to its end");
        CollectionAssert.AreEqual(new long[] { 1_000_000 }, future.Results, "the loop continued from where it yielded");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_guest_that_loops_forever_yields_at_every_deadline_and_deleting_its_future_ends_it()
    {
        // Its own engine: the epoch clock below must not hurry the other tests' guests.
        using var engine = new NativeEngine(new NativeEngineOptions());
        using var module = NativeModule.Compile(engine, NativeGuests.Wat(NativeGuests.Spinner));
        using var linker = new NativeLinker(engine);
        using var pre = linker.Prepare(module);
        using var store = NewStore(engine);
        var instance = NativeGuests.Instantiate(pre, store);
        var future = store.CallAsync(instance.GetFunction("_start")!, [], 0);

        // The deadline moves on from the epoch at which the guest resumes, so each slice ends only when
        // the epoch advances during the poll: an epoch clock, as the executor will have, drives it.
        using var stop = new CancellationTokenSource();
        var clock = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                engine.IncrementEpoch();
                Thread.Yield();
            }
        }, TestContext.CancellationToken);
        try
        {
            for (var slice = 0; slice < 50; slice++)
            {
                Assert.IsFalse(await Task.Run(future.Poll, TestContext.CancellationToken), $"slice {slice}: the spinning guest gives the thread back");
                Assert.IsNull(future.ParkedOn);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await clock;
        }
        future.Dispose();

        var count = NativeGuests.Run(store, instance, "count")[0];
        Assert.IsGreaterThan(0L, count, "the guest ran between its yields, on whichever thread polled it");
        Assert.AreEqual(count, NativeGuests.Run(store, instance, "count")[0], "and runs no more once its future is deleted; the store stays usable");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_guest_parks_in_an_async_host_function_without_a_thread_and_resumes_when_the_host_completes()
    {
        var calls = new List<(int Arg, HostCall Call)>();
        using var module = NativeModule.Compile(Engine, NativeGuests.Wat(NativeGuests.Waiter));
        using var linker = new NativeLinker(Engine);
        linker.DefineAsync("host", "wait", [WasmValueKind.I32], [WasmValueKind.I32], context =>
        {
            var call = HostCall.Pending();
            lock (calls)
            {
                calls.Add((context.GetI32(0), call));
            }
            return call;
        });
        using var pre = linker.Prepare(module);

        // Two guests, one thread: both park, the thread polls each and is free in between.
        using var first = NewStore();
        using var second = NewStore();
        using var a = first.CallAsync(NativeGuests.Instantiate(pre, first).GetFunction("run")!, [], 1);
        using var b = second.CallAsync(NativeGuests.Instantiate(pre, second).GetFunction("run")!, [], 1);
        Assert.IsFalse(a.Poll());
        Assert.IsFalse(b.Poll());
        Assert.HasCount(2, calls);
        Assert.AreSame(calls[0].Call, a.ParkedOn);
        Assert.AreSame(calls[1].Call, b.ParkedOn);
        Assert.AreEqual(41, calls[0].Arg);
        Assert.IsFalse(a.Poll(), "polling a parked guest returns at once while its host call is pending");

        // The host completes the second call from another thread; the guest resumes on yet another.
        await Task.Run(() => calls[1].Call.Complete([100]), TestContext.CancellationToken);
        await b.ParkedOn!.WhenCompleted.WaitAsync(TestContext.CancellationToken);
        Assert.IsTrue(await Task.Run(b.Poll, TestContext.CancellationToken));
        CollectionAssert.AreEqual(new long[] { 101 }, b.Results);
        Assert.IsFalse(a.Poll(), "the first guest is still parked");

        calls[0].Call.Complete([1]);
        Assert.IsTrue(await Task.Run(a.Poll, TestContext.CancellationToken));
        CollectionAssert.AreEqual(new long[] { 2 }, a.Results);
    }

    [TestMethod]
    public void A_host_function_that_throws_ends_the_call_with_the_hosts_message()
    {
        using var module = NativeModule.Compile(Engine, NativeGuests.Wat(NativeGuests.Waiter));
        using var linker = new NativeLinker(Engine);
        var pending = HostCall.Pending();
        linker.DefineAsync("host", "wait", [WasmValueKind.I32], [WasmValueKind.I32], _ => pending);
        linker.AllowShadowing(true);
        linker.DefineAsync("host", "wait", [WasmValueKind.I32], [WasmValueKind.I32], _ => throw new InvalidOperationException("not this one"));
        using var pre = linker.Prepare(module);
        using var store = NewStore();
        using var future = store.CallAsync(NativeGuests.Instantiate(pre, store).GetFunction("run")!, [], 1);

        // A trap made by the host (wasmtime_trap_new with a message) is not a wasm Trap to Wasmtime: the
        // future reports it through its error slot, so it arrives as the base exception with the message.
        var error = Assert.ThrowsExactly<WasmtimeNativeException>(() => future.Poll());

        StringAssert.Contains(error.Message, "InvalidOperationException: not this one", StringComparison.Ordinal);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Shadowing_wasi_poll_oneoff_parks_a_sleeping_C_guest_until_the_host_wakes_it()
    {
        var root = Directory.CreateTempSubdirectory("krustlet-native-sleep-").FullName;
        try
        {
            var sleeps = new List<(ulong Timeout, HostCall Call, GuestMemoryWrite[] Answer)>();
            using var module = NativeModule.Compile(Engine, NativeGuests.C("ticker"));
            using var linker = new NativeLinker(Engine);
            linker.DefineWasi();
            linker.AllowShadowing(true);
            linker.DefineAsync("wasi_snapshot_preview1", "poll_oneoff",
                [WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32], [WasmValueKind.I32],
                context => ParkOnClock(context, sleeps));
            using var pre = linker.Prepare(module);
            var stdout = Path.Combine(root, "stdout");
            using var store = NewStore();
            store.SetWasi(new NativeWasiOptions { Args = ["ticker", "3"], StdoutPath = stdout });
            using var future = store.CallAsync(NativeGuests.Instantiate(pre, store).GetFunction("_start")!, [], 0);

            for (var tick = 0; tick < 3; tick++)
            {
                var parked = await Task.Run(PollUntilParked, TestContext.CancellationToken);
                Assert.HasCount(tick + 1, sleeps);
                Assert.AreSame(sleeps[tick].Call, parked);
                Assert.AreEqual(50_000_000UL, sleeps[tick].Timeout, "nanosleep's 50 ms reaches the host as a clock subscription");
                Assert.AreEqual(tick + 1, File.ReadAllLines(stdout).Length, "the guest wrote its line and is parked in its sleep");
                Assert.IsFalse(future.Poll(), "still parked: nothing runs until the host wakes it");
                sleeps[tick].Call.Complete([0], sleeps[tick].Answer); // errno 0, one clock event
            }
            Assert.IsTrue(await Task.Run(future.Poll, TestContext.CancellationToken), "after its last sleep the guest returns from main");
            CollectionAssert.AreEqual(new[] { "tick 0", "tick 1", "tick 2" }, File.ReadAllLines(stdout));

            HostCall? PollUntilParked()
            {
                while (!future.Poll())
                {
                    if (future.ParkedOn is { } call)
                    {
                        return call;
                    }
                }
                throw new AssertFailedException("the guest ended instead of sleeping");
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>
    /// poll_oneoff(in, out, nsubscriptions, nevents_ptr) for one relative clock subscription: records the
    /// timeout and parks; completing answers with one clock event for that subscription.
    /// </summary>
    private static HostCall ParkOnClock(HostCallContext context, List<(ulong, HostCall, GuestMemoryWrite[])> sleeps)
    {
        var input = (uint)context.GetI32(0);
        var output = (uint)context.GetI32(1);
        Assert.AreEqual(1, context.GetI32(2), "nanosleep subscribes to one clock");
        var nevents = (uint)context.GetI32(3);
        Span<byte> subscription = stackalloc byte[48];
        Assert.IsTrue(context.TryReadMemory(input, subscription));
        Assert.AreEqual(0, subscription[8], "eventtype clock");
        var userdata = BinaryPrimitives.ReadUInt64LittleEndian(subscription);
        var timeout = BinaryPrimitives.ReadUInt64LittleEndian(subscription[24..]);

        var evt = new byte[32];
        BinaryPrimitives.WriteUInt64LittleEndian(evt, userdata); // error 0, type clock (0)
        var count = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(count, 1);
        var call = HostCall.Pending();
        sleeps.Add((timeout, call, [new(output, evt), new(nevents, count)]));
        return call;
    }
}
