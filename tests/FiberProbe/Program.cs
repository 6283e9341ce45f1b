using System.Buffers.Binary;
using Krustlet.Stages.Wasmtime.Native;

// Usage: Krustlet.FiberProbe <scenario> <module.wasm> [work directory]
// Exit 0: the scenario held; 1: it did not (the reason on stderr); killed by a signal: it crashed.
return Probe.Run(args);

internal static class Probe
{
    public static int Run(string[] args)
    {
        try
        {
            var wasm = File.ReadAllBytes(args[1]);
            var outcome = args[0] switch
            {
                "park" => WithoutGc(() => Park(wasm)),
                "throw" => WithoutGc(() => Throw(wasm)),
                "sleep" => WithoutGc(() => Sleep(wasm, args[2])),
                "gc-on-fiber" => GcOnFiber(wasm),
                _ => throw new ArgumentException($"unknown scenario {args[0]}"),
            };
            Console.WriteLine(outcome);
            return 0;
        }
#pragma warning disable CA1031 // The probe reports every failure as its exit code.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Console.Error.WriteLine(e);
            return 1;
        }
    }

    /// <summary>No collection may run while managed code is on a fiber stack: the scenario runs in a no-GC region.</summary>
    private static string WithoutGc(Func<string> scenario)
    {
        Check(GC.TryStartNoGCRegion(64 * 1024 * 1024), "no-GC region");
        try
        {
            return scenario();
        }
        finally
        {
            if (System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion)
            {
                GC.EndNoGCRegion();
            }
        }
    }

    private static NativeStore Store(NativeEngine engine)
    {
        var store = new NativeStore(engine);
        store.SetEpochDeadline(1_000_000);
        return store;
    }

    private static NativeInstance Instantiate(NativeInstancePre pre, NativeStore store)
    {
        using var future = pre.InstantiateAsync(store);
        Check(future.Poll(), "instantiation completes in one poll");
        return future.Instance;
    }

    /// <summary>Two guests parked in host.wait on one thread; completed from another; resumed on a third.</summary>
    private static string Park(byte[] wasm)
    {
        using var engine = new NativeEngine(new NativeEngineOptions());
        using var module = NativeModule.Compile(engine, wasm);
        using var linker = new NativeLinker(engine);
        var calls = new List<(int Arg, HostCall Call)>();
        linker.DefineAsync("host", "wait", [WasmValueKind.I32], [WasmValueKind.I32], context =>
        {
            var call = HostCall.Pending();
            calls.Add((context.GetI32(0), call));
            return call;
        });
        using var pre = linker.Prepare(module);
        using var first = Store(engine);
        using var second = Store(engine);
        using var a = first.CallAsync(Instantiate(pre, first).GetFunction("run")!, [], 1);
        using var b = second.CallAsync(Instantiate(pre, second).GetFunction("run")!, [], 1);
        Check(!a.Poll() && !b.Poll(), "both guests park");
        Check(calls.Count == 2 && ReferenceEquals(a.ParkedOn, calls[0].Call) && ReferenceEquals(b.ParkedOn, calls[1].Call), "each future says which call it is parked on");
        Check(calls[0].Arg == 41, "the host sees the guest's argument");
        Check(!a.Poll(), "a parked guest's poll returns at once while its call is pending");

        Task.Run(() => calls[1].Call.Complete([100])).Wait();
        Check(b.ParkedOn!.WhenCompleted.Wait(TimeSpan.FromSeconds(10)), "completion is observable");
        Check(Task.Run(b.Poll).Result && b.Results[0] == 101, "the second guest resumes on another thread with the host's result");
        Check(!a.Poll(), "the first is still parked");
        calls[0].Call.Complete([1]);
        Check(Task.Run(a.Poll).Result && a.Results[0] == 2, "the first resumes when its call completes");
        return "parked and resumed: 2 guests, 1 polling thread while parked";
    }

    private static string Throw(byte[] wasm)
    {
        using var engine = new NativeEngine(new NativeEngineOptions());
        using var module = NativeModule.Compile(engine, wasm);
        using var linker = new NativeLinker(engine);
        linker.DefineAsync("host", "wait", [WasmValueKind.I32], [WasmValueKind.I32], _ => throw new InvalidOperationException("not this one"));
        using var pre = linker.Prepare(module);
        using var store = Store(engine);
        using var future = store.CallAsync(Instantiate(pre, store).GetFunction("run")!, [], 1);
        try
        {
            future.Poll();
        }
        catch (WasmtimeNativeException e) when (e is not WasmTrapException && e.Message.Contains("InvalidOperationException: not this one", StringComparison.Ordinal))
        {
            return "host exception ended the call: " + e.Message;
        }
        throw new InvalidOperationException("the host's exception did not end the call");
    }

    /// <summary>A C guest's nanosleep (WASI poll_oneoff, shadowed) parks until the host wakes it.</summary>
    private static string Sleep(byte[] wasm, string directory)
    {
        using var engine = new NativeEngine(new NativeEngineOptions());
        using var module = NativeModule.Compile(engine, wasm);
        using var linker = new NativeLinker(engine);
        linker.DefineWasi();
        linker.AllowShadowing(true);
        var sleeps = new List<(ulong Timeout, HostCall Call, GuestMemoryWrite[] Answer)>();
        linker.DefineAsync("wasi_snapshot_preview1", "poll_oneoff",
            [WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32], [WasmValueKind.I32],
            context => ParkOnClock(context, sleeps));
        using var pre = linker.Prepare(module);
        var stdout = Path.Combine(directory, "stdout");
        using var store = Store(engine);
        store.SetWasi(new NativeWasiOptions { Args = ["ticker", "3"], StdoutPath = stdout });
        using var future = store.CallAsync(Instantiate(pre, store).GetFunction("_start")!, [], 0);
        for (var tick = 0; tick < 3; tick++)
        {
            var parked = Task.Run(() =>
            {
                while (!future.Poll())
                {
                    if (future.ParkedOn is { } call)
                    {
                        return call;
                    }
                }
                throw new InvalidOperationException("the guest ended instead of sleeping");
            }).Result;
            Check(sleeps.Count == tick + 1 && ReferenceEquals(sleeps[tick].Call, parked), "parked on its sleep");
            Check(sleeps[tick].Timeout == 50_000_000, "nanosleep's 50 ms arrives as a clock subscription");
            Check(File.ReadAllLines(stdout).Length == tick + 1, "the line before the sleep is written");
            Check(!future.Poll(), "nothing runs until the host wakes it");
            sleeps[tick].Call.Complete([0], sleeps[tick].Answer);
        }
        Check(Task.Run(future.Poll).Result, "the guest returns from main after its last sleep");
        Check(File.ReadAllLines(stdout).SequenceEqual(["tick 0", "tick 1", "tick 2"]), "all three lines");
        return "3 sleeps parked in poll_oneoff and woken by the host";
    }

    /// <summary>poll_oneoff(in, out, nsubscriptions, nevents): one relative clock subscription; the answer is one clock event.</summary>
    private static HostCall ParkOnClock(HostCallContext context, List<(ulong, HostCall, GuestMemoryWrite[])> sleeps)
    {
        var input = (uint)context.GetI32(0);
        var output = (uint)context.GetI32(1);
        var nevents = (uint)context.GetI32(3);
        Span<byte> subscription = stackalloc byte[48];
        if (context.GetI32(2) != 1 || !context.TryReadMemory(input, subscription) || subscription[8] != 0)
        {
            return HostCall.Ready(28); // EINVAL: only one clock subscription is understood here
        }
        var evt = new byte[32];
        BinaryPrimitives.WriteUInt64LittleEndian(evt, BinaryPrimitives.ReadUInt64LittleEndian(subscription)); // userdata; error 0, type clock
        var count = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(count, 1);
        var call = HostCall.Pending();
        sleeps.Add((BinaryPrimitives.ReadUInt64LittleEndian(subscription[24..]), call, [new(output, evt), new(nevents, count)]));
        return call;
    }

    /// <summary>
    /// The reproduction: host calls that allocate, with a collection now and then while a host function
    /// runs (as any allocation may cause). Expected to crash the process.
    /// </summary>
    private static string GcOnFiber(byte[] wasm)
    {
        var engine = new NativeEngine(new NativeEngineOptions());
        using var module = NativeModule.Compile(engine, wasm);
        using var linker = new NativeLinker(engine);
        var collectEvery = 1000;
        linker.DefineAsync("host", "wait", [WasmValueKind.I32], [WasmValueKind.I32], context =>
        {
            var i = context.GetI32(0);
            if (i % collectEvery == 0)
            {
                GC.Collect();
            }
            return HostCall.Ready(i);
        });
        using var pre = linker.Prepare(module);
        // A bystander: another managed thread at work (an agent always has some). Without one the
        // collection happened to survive in the runs tried; with one, most runs die.
        using var stop = new CancellationTokenSource();
        var queue = new System.Collections.Concurrent.ConcurrentQueue<HostCall>();
        var bystander = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (queue.TryDequeue(out var call))
                {
                    call.Complete([7]);
                }
                else
                {
                    Thread.Yield();
                }
            }
        });
        bystander.Start();
        long polls = 0;
        var worker = Task.Run(() =>
        {
            for (var round = 0; round < 5; round++)
            {
                using var store = Store(engine);
                var instance = Instantiate(pre, store);
                using var future = store.CallAsync(instance.GetFunction("run")!, [30_000], 1);
                while (!future.Poll())
                {
                    Interlocked.Increment(ref polls);
                }
                Check(future.Results[0] == unchecked((int)(30_000L * 29_999 / 2)), "the guest's sum");
            }
        });
        worker.Wait();
        stop.Cancel();
        bystander.Join();
        return $"survived 5 × 30,000 host calls with a collection every {collectEvery} ({polls} extra polls)";
    }

    private static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException("failed: " + what);
        }
    }
}
