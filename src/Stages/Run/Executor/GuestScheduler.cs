using System.Collections.Concurrent;
using System.Diagnostics;

namespace Krustlet.Stages.Run.Executor;

/// <summary>What one poll of a guest came to.</summary>
public enum GuestPoll
{
    /// <summary>The guest finished (returned, exited, trapped or was killed): it is not polled again.</summary>
    Done,

    /// <summary>The guest used up its time slice with work left: it goes to the back of the run queue.</summary>
    Yielded,

    /// <summary>
    /// The guest waits for something (a timer, a kill) and has arranged for <see cref="GuestHandle.Wake"/>
    /// to be called when it comes: it holds no thread until then.
    /// </summary>
    Parked,
}

/// <summary>
/// A guest the scheduler runs in steps. Each <see cref="Poll"/> runs it on the calling scheduler thread
/// until it finishes, reaches the end of its time slice, or parks; it is never polled on two threads at
/// once, and never again after <see cref="GuestPoll.Done"/>. Disposed by the scheduler when it is done,
/// or when the scheduler stops before it is.
/// </summary>
public interface IGuest : IDisposable
{
    /// <summary>Runs the guest one step. An exception ends the guest: its task faults with it.</summary>
    GuestPoll Poll(GuestHandle handle);
}

/// <summary>
/// The scheduler's side of one guest: <see cref="Wake"/> puts a parked guest back on the run queue. A wake
/// that comes while the guest is being polled is kept, so a guest that parks right after is queued again
/// at once (no wake-up is lost, whatever the order).
/// </summary>
public sealed class GuestHandle
{
    private const int Queued = 0;
    private const int Running = 1;
    private const int Parked = 2;
    private const int WokenWhileRunning = 3;
    private const int Finished = 4;

    private readonly GuestScheduler _scheduler;
    private int _state = Queued;

    internal GuestHandle(GuestScheduler scheduler, IGuest guest)
    {
        _scheduler = scheduler;
        Guest = guest;
    }

    internal IGuest Guest { get; }

    internal TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How many times the guest has been polled.</summary>
    public long Polls { get; private set; }

    /// <summary>Queues the guest again if it is parked; remembers the wake if it is running; does nothing once it is done.</summary>
    public void Wake()
    {
        while (true)
        {
            switch (Volatile.Read(ref _state))
            {
                case Parked:
                    if (Interlocked.CompareExchange(ref _state, Queued, Parked) == Parked)
                    {
                        _scheduler.Unpark(this);
                        return;
                    }

                    break;
                case Running:
                    if (Interlocked.CompareExchange(ref _state, WokenWhileRunning, Running) == Running)
                    {
                        return;
                    }

                    break;
                default:
                    return; // already queued, already woken, or done
            }
        }
    }

    /// <summary>Polls the guest once on the calling scheduler thread; true when it should be queued again.</summary>
    internal bool Step()
    {
        Volatile.Write(ref _state, Running);
        GuestPoll poll;
        try
        {
            Polls++;
            poll = Guest.Poll(this);
        }
#pragma warning disable CA1031 // A guest's failure is its own: its task faults and the scheduler goes on.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Finish(ex);
            return false;
        }

        switch (poll)
        {
            case GuestPoll.Done:
                Finish(null);
                return false;
            case GuestPoll.Parked:
                _scheduler.Park(); // counted first, so a wake right after never takes the count below zero
                if (Interlocked.CompareExchange(ref _state, Parked, Running) == Running)
                {
                    return false;
                }

                _scheduler.Unpark(null); // woken while it ran: queued again below
                Volatile.Write(ref _state, Queued);
                return true;
            default:
                // Yielded, or parked after a wake that came while it ran: back on the run queue.
                Volatile.Write(ref _state, Queued);
                return true;
        }
    }

    /// <summary>Ends the guest without polling it again (the scheduler is stopping).</summary>
    internal void Abandon()
    {
        if (Interlocked.Exchange(ref _state, Finished) != Finished)
        {
            Guest.Dispose();
            _scheduler.Forget(this);
            Completion.TrySetCanceled();
        }
    }

    private void Finish(Exception? failure)
    {
        Volatile.Write(ref _state, Finished);
        Guest.Dispose();
        _scheduler.Forget(this); // before the task completes: whoever awaits it sees the guest gone
        if (failure is null)
        {
            Completion.TrySetResult();
        }
        else
        {
            Completion.TrySetException(failure);
        }
    }
}

/// <summary>
/// Runs any number of guests on a few dedicated threads (M:N): a guest holds a thread only while it is
/// polled, a parked guest holds none and costs no CPU until it is woken, and a guest that used up its
/// slice goes to the back of the queue, so a spinning guest delays the others by at most a slice per
/// thread. The threads are the scheduler's for its whole life; nothing of a guest outlives its task.
/// </summary>
public sealed class GuestScheduler : IDisposable
{
    private readonly ConcurrentQueue<GuestHandle> _runQueue = new();
    private readonly ConcurrentDictionary<GuestHandle, byte> _live = new();
    // Idle threads wait on a monitor, not a SemaphoreSlim: SemaphoreSlim spins before it blocks, and a
    // node of thousands of sleeping guests wakes an idle thread thousands of times a second, each of
    // which would spin for nothing (measured: half of the agent's CPU with 2,000 tickers).
    private readonly object _gate = new();
    private int _idle;
    private volatile bool _stopping;

    // Wake-ups on the real clock, fired by the executor's own threads (no timer thread, no thread-pool
    // hop): guarded by _gate; _nextDue is the earliest, as a Stopwatch timestamp.
    private readonly PriorityQueue<Action, long> _timers = new();
    private long _nextDue = long.MaxValue;
    private bool _timekeeper;
    private readonly Thread[] _threads;
    private int _parked;
    private int _disposed;

    /// <param name="threads">How many threads poll guests (default: one per core).</param>
    /// <param name="name">The threads' name, as it shows in a debugger or /proc.</param>
    public GuestScheduler(int threads = 0, string name = "wasm-executor")
    {
        if (threads == 0)
        {
            threads = Environment.ProcessorCount;
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        _threads = new Thread[threads];
        for (var i = 0; i < threads; i++)
        {
            _threads[i] = new Thread(Work) { IsBackground = true, Name = $"{name}-{i}" };
            _threads[i].Start();
        }
    }

    /// <summary>The threads that poll guests.</summary>
    public int Threads => _threads.Length;

    /// <summary>Guests not yet done.</summary>
    public int Guests => _live.Count;

    /// <summary>Guests parked: holding no thread until woken.</summary>
    public int ParkedGuests => Volatile.Read(ref _parked);

    /// <summary>Starts running <paramref name="guest"/>; completes when it is done, faults when its poll throws.</summary>
    public (GuestHandle Handle, Task Completion) Start(IGuest guest)
    {
        ArgumentNullException.ThrowIfNull(guest);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var handle = new GuestHandle(this, guest);
        _live[handle] = 0;
        Enqueue(handle);
        return (handle, handle.Completion.Task);
    }

    /// <summary>Stops the threads after their current poll; guests not done are disposed and their tasks cancelled.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping = true;
        lock (_gate)
        {
            Monitor.PulseAll(_gate);
        }

        foreach (var thread in _threads)
        {
            thread.Join();
        }

        foreach (var handle in _live.Keys.ToList())
        {
            handle.Abandon();
        }
    }

    /// <summary>
    /// Calls <paramref name="callback"/> on an executor thread once <paramref name="delay"/> has passed on
    /// the real clock (it should only wake a guest). There is no cancelling: a callback whose guest has
    /// ended must do nothing; its entry is dropped when it falls due.
    /// </summary>
    public void WakeAfter(TimeSpan delay, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var ticks = delay <= TimeSpan.Zero ? 0 : delay.TotalSeconds * Stopwatch.Frequency;
        var now = Stopwatch.GetTimestamp();
        var due = ticks >= long.MaxValue - now ? long.MaxValue - 1 : now + (long)ticks;
        lock (_gate)
        {
            _timers.Enqueue(callback, due);
            if (due < _nextDue)
            {
                Volatile.Write(ref _nextDue, due);
                Monitor.PulseAll(_gate); // the idle thread keeping the clock waits for the new earliest instead
            }
        }
    }

    /// <summary>Wake-ups waiting to fall due (including those of guests that have ended meanwhile).</summary>
    public int PendingWakeups
    {
        get
        {
            lock (_gate)
            {
                return _timers.Count;
            }
        }
    }

    private void FireDueWakeups()
    {
        if (Stopwatch.GetTimestamp() < Volatile.Read(ref _nextDue))
        {
            return;
        }

        List<Action>? due = null;
        lock (_gate)
        {
            var now = Stopwatch.GetTimestamp();
            while (_timers.TryPeek(out var callback, out var at) && at <= now)
            {
                _timers.Dequeue();
                (due ??= []).Add(callback);
            }

            Volatile.Write(ref _nextDue, _timers.TryPeek(out _, out var next) ? next : long.MaxValue);
        }

        foreach (var callback in due ?? [])
        {
            callback();
        }
    }

    internal void Park() => Interlocked.Increment(ref _parked);

    internal void Forget(GuestHandle handle) => _live.TryRemove(handle, out _);

    internal void Unpark(GuestHandle? handle)
    {
        Interlocked.Decrement(ref _parked);
        if (handle is not null)
        {
            Enqueue(handle);
        }
    }

    private void Enqueue(GuestHandle handle)
    {
        _runQueue.Enqueue(handle);
        // The queue is written before _idle is read, and a waiter counts itself before it looks at the
        // queue (both interlocked), so either the waiter sees the guest or this sees the waiter.
        if (Volatile.Read(ref _idle) > 0)
        {
            lock (_gate)
            {
                Monitor.Pulse(_gate);
            }
        }
    }

    private void Work()
    {
        while (!_stopping)
        {
            FireDueWakeups();
            if (_runQueue.TryDequeue(out var handle))
            {
                if (handle.Step())
                {
                    Enqueue(handle);
                }

                continue;
            }

            lock (_gate)
            {
                Interlocked.Increment(ref _idle);
                try
                {
                    while (_runQueue.IsEmpty && !_stopping)
                    {
                        // One idle thread keeps the clock (a timed wait); the others wait for work.
                        var due = Volatile.Read(ref _nextDue);
                        if (due == long.MaxValue || _timekeeper)
                        {
                            Monitor.Wait(_gate);
                            continue;
                        }

                        // Whole milliseconds, rounded up (Monitor.Wait would truncate a shorter wait to
                        // zero and spin), at most an hour (it waits again).
                        var ticks = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due).Ticks;
                        if (ticks <= 0)
                        {
                            break; // a wake-up fell due: fire it outside the lock
                        }

                        var milliseconds = (int)Math.Min((ticks + TimeSpan.TicksPerMillisecond - 1) / TimeSpan.TicksPerMillisecond, 3_600_000);
                        _timekeeper = true;
                        try
                        {
                            if (!Monitor.Wait(_gate, milliseconds))
                            {
                                break;
                            }
                        }
                        finally
                        {
                            _timekeeper = false;
                        }
                    }
                }
                finally
                {
                    Interlocked.Decrement(ref _idle);
                }
            }
        }
    }
}
