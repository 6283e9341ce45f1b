using Krustlet.Pipeline.Events;

namespace Krustlet.Pipeline.Engine;

/// <summary>What the gate did with an event.</summary>
internal enum AdmitDisposition
{
    /// <summary>The key was idle: the event became a work item to send into the graph now.</summary>
    Dispatched,

    /// <summary>The key is in flight: the event waits until the current work item leaves the graph.</summary>
    Pending,

    /// <summary>The key is in flight and already had a waiting update: the newer one replaced it.</summary>
    Coalesced,

    /// <summary>The event asks for nothing new (a re-entry for a deleted key, a repeated deletion, or the pipeline is stopping).</summary>
    Dropped,
}

/// <summary>
/// The per-key gate: at most one work item per key is in the graph at any time, so work for one key is
/// never concurrent and never out of order, while different keys flow in parallel.
/// </summary>
/// <remarks>
/// While a key is in flight the gate keeps at most one waiting deletion and one waiting upsert for it:
/// <list type="bullet">
/// <item>a newer upsert replaces a waiting one (latest spec wins);</item>
/// <item>a deletion cancels the in-flight upsert through its token, drops any waiting upsert, and is
/// itself never dropped: it runs after the in-flight item, even when that item is a deletion too
/// (two deletions waiting together merge into one); an upsert that arrives after it waits behind it
/// (a key that comes back);</item>
/// <item>a re-entry carries no payload: it runs with the latest payload the gate knows, and is dropped
/// when an upsert is already waiting or the key has been deleted.</item>
/// </list>
/// </remarks>
internal sealed class KeyedGate<T>
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, KeyState> _keys = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private long _version;
    private bool _closed;
    private int _inFlight;
    private TaskCompletionSource? _idle;

    public KeyedGate(TimeProvider time) => _time = time;

    /// <summary>Keys the gate is tracking: in flight, waiting, or known for re-entry.</summary>
    public int TrackedKeys
    {
        get
        {
            lock (_lock)
            {
                return _keys.Count;
            }
        }
    }

    public int InFlightCount => Volatile.Read(ref _inFlight);

    /// <summary>Completes when no key has work in flight (and so none has events waiting).</summary>
    public Task WhenIdle()
    {
        lock (_lock)
        {
            if (_inFlight == 0)
            {
                return Task.CompletedTask;
            }

            return (_idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    public (WorkItem<T>? Dispatch, AdmitDisposition Disposition) Admit(PipelineEvent<T> evt)
    {
        lock (_lock)
        {
            if (_closed)
            {
                return (null, AdmitDisposition.Dropped);
            }

            var version = ++_version;
            _keys.TryGetValue(evt.Key, out var state);

            if (evt.Kind == EventKind.Upsert)
            {
                if (evt.Origin == EventOrigin.Reentry)
                {
                    if (state is null || !state.HasLatest || state.PendingUpsert is not null)
                    {
                        return (null, AdmitDisposition.Dropped);
                    }
                }
                else
                {
                    if (state is null)
                    {
                        state = new KeyState();
                        _keys.Add(evt.Key, state);
                    }

                    state.Latest = evt.Value;
                    state.HasLatest = true;
                }

                if (state.InFlight is null)
                {
                    return (Start(evt.Key, state, EventKind.Upsert, state.Latest, evt.Origin, evt.Reason, version), AdmitDisposition.Dispatched);
                }

                var disposition = state.PendingUpsert is null ? AdmitDisposition.Pending : AdmitDisposition.Coalesced;
                state.PendingUpsert = new Pending(evt.Origin, evt.Reason, version);
                return (null, disposition);
            }

            // Deletion.
            if (state is null)
            {
                state = new KeyState();
                _keys.Add(evt.Key, state);
            }

            var lastKnown = evt.Value ?? (state.HasLatest ? state.Latest : default);
            state.Latest = default;
            state.HasLatest = false;

            if (state.InFlight is null)
            {
                return (Start(evt.Key, state, EventKind.Delete, lastKnown, evt.Origin, evt.Reason, version), AdmitDisposition.Dispatched);
            }

            var droppedUpsert = state.PendingUpsert is not null;
            state.PendingUpsert = null;
            if (state.InFlight.Kind == EventKind.Upsert)
            {
                state.InFlightCancellation!.Cancel();
            }

            if (state.PendingDelete is not null)
            {
                // Two waiting deletions with nothing between them are one teardown; it takes the newer event.
                state.PendingDelete = new PendingDeletion(lastKnown ?? state.PendingDelete.LastKnown, version);
                return (null, AdmitDisposition.Coalesced);
            }

            state.PendingDelete = new PendingDeletion(lastKnown, version);
            return (null, droppedUpsert ? AdmitDisposition.Coalesced : AdmitDisposition.Pending);
        }
    }

    /// <summary>
    /// Called when <paramref name="item"/> has left the graph. Returns the key's next work item, if an
    /// event was waiting for it: a deletion first, then an upsert.
    /// </summary>
    public WorkItem<T>? Complete(WorkItem<T> item)
    {
        lock (_lock)
        {
            if (!_keys.TryGetValue(item.Key, out var state) || !ReferenceEquals(state.InFlight, item))
            {
                throw new InvalidOperationException($"Work item for key '{item.Key}' completed but is not the key's in-flight item.");
            }

            state.InFlight = null;
            state.InFlightCancellation!.Dispose();
            state.InFlightCancellation = null;
            _inFlight--;

            if (!_closed)
            {
                if (state.PendingDelete is { } deletion)
                {
                    state.PendingDelete = null;
                    return Start(item.Key, state, EventKind.Delete, deletion.LastKnown, EventOrigin.Source, null, deletion.Version);
                }

                if (state.PendingUpsert is { } upsert)
                {
                    state.PendingUpsert = null;
                    return Start(item.Key, state, EventKind.Upsert, state.Latest, upsert.Origin, upsert.Reason, upsert.Version);
                }
            }

            if (!state.HasLatest && state.PendingDelete is null && state.PendingUpsert is null)
            {
                _keys.Remove(item.Key);
            }

            if (_inFlight == 0 && _idle is { } idle)
            {
                _idle = null;
                idle.TrySetResult();
            }

            return null;
        }
    }

    /// <summary>Stops admitting events. Returns the keys whose waiting events will never run.</summary>
    public IReadOnlyList<string> Close()
    {
        lock (_lock)
        {
            _closed = true;
            return [.. _keys.Where(p => p.Value.PendingDelete is not null || p.Value.PendingUpsert is not null).Select(p => p.Key)];
        }
    }

    /// <summary>Cancels every in-flight work item (the shutdown deadline passed). Returns their keys.</summary>
    public IReadOnlyList<string> CancelAll()
    {
        lock (_lock)
        {
            var keys = new List<string>();
            foreach (var (key, state) in _keys)
            {
                if (state.InFlightCancellation is { } cts)
                {
                    cts.Cancel();
                    keys.Add(key);
                }
            }

            return keys;
        }
    }

    public IReadOnlyList<string> InFlightKeys()
    {
        lock (_lock)
        {
            return [.. _keys.Where(p => p.Value.InFlight is not null).Select(p => p.Key)];
        }
    }

    private WorkItem<T> Start(string key, KeyState state, EventKind kind, T? value, EventOrigin origin, string? reason, long version)
    {
        var cts = new CancellationTokenSource();
        var item = new WorkItem<T>(key, kind, value, origin, reason, state.NextSequence++, version, _time.GetUtcNow(), cts.Token);
        state.InFlight = item;
        state.InFlightCancellation = cts;
        _inFlight++;
        return item;
    }

    private sealed class KeyState
    {
        public WorkItem<T>? InFlight;
        public CancellationTokenSource? InFlightCancellation;
        public T? Latest;
        public bool HasLatest;
        public PendingDeletion? PendingDelete;
        public Pending? PendingUpsert;
        public long NextSequence;
    }

    private sealed record Pending(EventOrigin Origin, string? Reason, long Version);

    private sealed record PendingDeletion(T? LastKnown, long Version);
}
