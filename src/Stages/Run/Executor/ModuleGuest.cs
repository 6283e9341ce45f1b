using System.Diagnostics;
using Krustlet.Stages.Compile;
using Krustlet.Stages.Wasmtime.Native;

namespace Krustlet.Stages.Run.Executor;

/// <summary>
/// One run of a core-module container as a guest of the <see cref="GuestScheduler"/>: a fresh pooled
/// store with the container's limits and WASI, instantiated from the artifact's InstancePre, then
/// <c>_start</c>, both as futures. Each poll runs it until it finishes, its time slice ends (an epoch
/// yield), or it parks in the shim's <c>poll_oneoff</c> (a sleep: a timer from the injected clock wakes
/// it) or <c>sched_yield</c>. Output is drained into the CRI log after every poll. A kill or a deadline
/// wakes a parked guest at once, and the next poll ends it by deleting its future.
/// </summary>
internal sealed class ModuleGuest : IGuest
{
    private readonly WasmEngineHost _host;
    private readonly ContainerLaunch _launch;
    private readonly ContainerControl _control;
    private readonly TimeProvider _time;
    private readonly CriLogWriter _log;
    private readonly IGuestOutput _output;
    private readonly OutputFiles? _files;
    private readonly DateTimeOffset _startedAt;
    private readonly TaskCompletionSource<ContainerExit> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private readonly NativeStore _store;
    private GuestFuture? _future;
    private bool _calling;
    private bool _finished;
    private GuestHandle? _handle;
    private ITimer? _sleep;
    private ITimer? _deadline;
    private long _sleeps;

    /// <summary>A sleep at least this long closes the container's log file until its next write.</summary>
    private static readonly TimeSpan LogIdleClose = TimeSpan.FromSeconds(2);

    /// <param name="host">The engine and executor.</param>
    /// <param name="launch">What runs: the artifact, argv, environment, mounts and memory limit.</param>
    /// <param name="control">Kills and the deadline.</param>
    /// <param name="time">The clock of sleeps and the deadline.</param>
    /// <param name="log">The container's CRI log (long sleeps close its file).</param>
    /// <param name="output">Where stdout and stderr go; the CRI log when null.</param>
    /// <param name="stdin">What the guest reads on stdin; a closed stdin when null.</param>
    public ModuleGuest(WasmEngineHost host, ContainerLaunch launch, ContainerControl control, TimeProvider time, CriLogWriter log, IGuestOutput? output = null, ReadOnlyMemory<byte>? stdin = null)
    {
        _host = host;
        _launch = launch;
        _control = control;
        _time = time;
        _log = log;
        _output = output ?? new CriLogOutput(log);
        _startedAt = time.GetUtcNow();
        _store = new NativeStore(host.Native.Engine);
        try
        {
            var limit = WasmContainerRunner.MemoryLimit(launch.MemoryLimitBytes, host.Options.MaxContainerMemory);
            _store.SetLimits(new NativeStoreLimits
            {
                MemorySize = limit,
                TableElements = WasmContainerRunner.TableElementsWithin(limit),
                Instances = WasmContainerRunner.MaxInstances,
                Tables = WasmContainerRunner.MaxTables,
                Memories = WasmContainerRunner.MaxMemories,
            });
            if (host.Options.FuelEnabled)
            {
                _store.SetFuel(host.Options.FuelPerContainer);
            }

            // A short-lived instance whose output is passed on (an HTTP request) writes to in-memory files:
            // no hop to Wasmtime's Tokio thread per write, as a custom stdout has. A container's run keeps
            // the shim's buffers (a long-lived guest holds no file descriptors while it sleeps).
            var passedOn = output is not (null or CriLogOutput);
            _files = passedOn ? OutputFiles.Rent() : null;
            _store.SetWasi(new NativeWasiOptions
            {
                Args = launch.Argv,
                Environment = launch.Env,
                Preopens = [.. launch.Mounts.Select(m => new NativePreopen(m.HostPath, m.GuestPath, !m.ReadOnly))],
                CaptureOutput = _files is null,
                StdoutPath = _files?.StdoutPath,
                StderrPath = _files?.StderrPath,
                Stdin = stdin,
                // Without the files (memfd refused, e.g. at the descriptor limit) the shim's buffers carry
                // the stream, and its high-water mark ends the slice so the bytes go on as they come.
                YieldAtOutputHighWater = passedOn && _files is null,
            });
            // Every epoch tick ends the guest's slice: it yields, and the scheduler polls the next guest.
            _store.YieldAtEpochDeadline(1);
            _future = launch.Artifact.InstancePre!.InstantiateAsync(_store);
        }
        catch
        {
            _future?.Dispose();
            _store.Dispose();
            _files?.Dispose();
            throw;
        }
    }

    /// <summary>How the run ended; completes when the guest is done.</summary>
    public Task<ContainerExit> Exit => _exit.Task;

    public GuestPoll Poll(GuestHandle handle)
    {
        if (_handle is null)
        {
            _handle = handle;
            _control.OnStop(WakeForStop);
            if (_control.Deadline is { } deadline)
            {
                var due = deadline - _time.GetUtcNow();
                // The timer may fire a little before the clock reads the deadline: it kills, not just wakes.
                _deadline = _time.CreateTimer(_ => _control.Kill(KillCause.DeadlineExceeded), null, due > TimeSpan.Zero ? due : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
            }
        }

        while (true)
        {
            if (_control.ShouldStop(out var cause))
            {
                return Finish(new ContainerExit(ExitKind.Killed, ContainerExit.KilledExitCode, KubeletReasons.Error, $"killed: {cause.Message}", _startedAt, _time.GetUtcNow()));
            }

            bool done;
            var started = Stopwatch.GetTimestamp();
            try
            {
                done = _future!.Poll();
            }
            catch (WasmtimeNativeException ex)
            {
                Account(started);
                DrainOutput(final: true);
                return Finish(WasmContainerRunner.Outcome(ex, _launch, _host, _startedAt, _time));
            }

            Account(started);
            DrainOutput(final: done && _calling);
            if (!done && _output.Backpressure is { IsCompleted: false } pending)
            {
                // What it wrote is still on its way (a slow HTTP client): it goes on once that is done.
                var parking = _store.Mailbox.Parking;
                var duration = _store.Mailbox.SleepDuration;
                pending.ContinueWith(_ => AfterBackpressure(parking, duration), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                return GuestPoll.Parked;
            }

            if (!done)
            {
                switch (_store.Mailbox.Parking)
                {
                    case GuestParking.Sleeping:
                        ArmSleep(_store.Mailbox.SleepDuration);
                        return GuestPoll.Parked;
                    case GuestParking.Yielding:
                        _store.Mailbox.Wake(); // continues when the scheduler comes back to it
                        return GuestPoll.Yielded;
                    default:
                        return GuestPoll.Yielded; // its slice ended
                }
            }

            if (_calling)
            {
                return Finish(new ContainerExit(ExitKind.Exited, 0, KubeletReasons.Completed, null, _startedAt, _time.GetUtcNow()));
            }

            var instance = _future.Instance;
            _future.Dispose();
            _future = null;
            // Its memory as instantiated: what the stats show until its first poll_oneoff/sched_yield.
            _control.Usage.SetMemory((long)(instance.MemorySize("memory") ?? 0));
            var start = instance.GetFunction("_start");
            if (start is null)
            {
                return Finish(new ContainerExit(ExitKind.FailedToStart, 128, KubeletReasons.StartError, "the module exports no _start function: it is not a WASI command", _startedAt, _time.GetUtcNow()));
            }

            _future = _store.CallAsync(start, [], 0);
            _calling = true;
        }
    }

    // The poll's time is the guest's CPU time (its thread ran nothing else meanwhile); its memory is what
    // the shim saw of its linear memory at the guest's last poll_oneoff/sched_yield (a guest that never
    // calls the host keeps its size as instantiated), plus its tables as declared (WasmTables).
    private void Account(long started)
    {
        _control.Usage.AddPoll(started, Stopwatch.GetTimestamp());
        if (_store.Mailbox.MemoryBytes is > 0 and var bytes)
        {
            _control.Usage.SetMemory((long)bytes + _launch.Artifact.TableBytes);
        }
    }

    private void ArmSleep(TimeSpan duration)
    {
        var sleep = Interlocked.Increment(ref _sleeps);
        if (duration >= LogIdleClose)
        {
            _log.CloseUntilNextWrite(); // a long sleep holds no file descriptor
        }

        if (_time == TimeProvider.System)
        {
            // On the real clock the executor's threads keep the timer: no timer thread, no pool hop.
            _host.Native.Scheduler.WakeAfter(duration, () => WakeFromSleep(sleep));
            return;
        }

        lock (_gate)
        {
            _sleep?.Dispose();
            _sleep = _time.CreateTimer(_ => WakeFromSleep(sleep), null, duration, Timeout.InfiniteTimeSpan);
        }
    }

    private void WakeFromSleep(long sleep)
    {
        lock (_gate)
        {
            if (_finished || sleep != Volatile.Read(ref _sleeps))
            {
                return; // the guest ended (its mailbox may be gone with the store) or this sleep is over
            }

            _store.Mailbox.Wake();
        }

        _handle!.Wake();
    }

    private void WakeForStop() => _handle?.Wake();

    // The guest parked (or yielded) while its output was still being written on: now that it is, it
    // continues as it would have (a sleep is armed, a yield queued again).
    private void AfterBackpressure(GuestParking parking, TimeSpan duration)
    {
        switch (parking)
        {
            case GuestParking.Sleeping:
                ArmSleep(duration);
                return;
            case GuestParking.Yielding:
                lock (_gate)
                {
                    if (!_finished)
                    {
                        _store.Mailbox.Wake();
                    }
                }

                break;
        }

        _handle!.Wake();
    }

    private void DrainOutput(bool final)
    {
        if (_files is not null)
        {
            _files.Drain(_output, final);
            return;
        }

        var mailbox = _store.Mailbox;
        mailbox.Drain(true, static (bytes, output) => ((IGuestOutput)output!).Stderr(bytes), _output);
        if (!final)
        {
            mailbox.Drain(false, static (bytes, output) => ((IGuestOutput)output!).Stdout(bytes, false), _output);
        }
        else if (mailbox.StdoutLength > 0)
        {
            mailbox.Drain(false, static (bytes, output) => ((IGuestOutput)output!).Stdout(bytes, true), _output);
        }
        else
        {
            _output.Stdout([], true);
        }
    }

    /// <summary>Output bytes lost because the guest wrote more than the shim buffers within one time slice; known once <see cref="Exit"/> has completed.</summary>
    public ulong DroppedOutput { get; private set; }

    private GuestPoll Finish(ContainerExit exit)
    {
        DroppedOutput = _store.Mailbox.DroppedBytes;
        _exit.TrySetResult(exit);
        return GuestPoll.Done;
    }

    /// <summary>Deletes the future (ending a guest that has not finished) and the store; the scheduler calls it once.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _finished = true;
            _sleep?.Dispose();
        }

        _deadline?.Dispose();
        _control.OnStop(null);
        _future?.Dispose();
        _future = null;
        if (_store.Mailbox.DroppedBytes > 0)
        {
            _log.Write(LogStream.Stderr, System.Text.Encoding.UTF8.GetBytes($"\n[krustlet: {_store.Mailbox.DroppedBytes} bytes of output were dropped: the guest wrote more than 16 MiB within one time slice]\n"));
        }

        _store.Dispose();
        _files?.Dispose(); // after the store, which closed Wasmtime's own descriptors of them
        _exit.TrySetCanceled();
    }
}
