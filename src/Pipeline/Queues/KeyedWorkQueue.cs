using System.Diagnostics;
using System.Threading.Channels;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Krustlet.Pipeline.Queues;

/// <summary>
/// A bounded, coalescing work queue with per-key ordering, for stages fed from more than one place
/// (the status stage takes results from the graph and updates from running containers).
/// </summary>
/// <remarks>
/// Each key has at most one waiting value: a new value for a waiting key is merged into it (by default
/// the newer one wins) and takes no extra room. A key is never handled by two workers at once; a value
/// that arrives while its key is being handled waits and runs next. <see cref="StageOptions.Capacity"/>
/// bounds the number of keys waiting: beyond it, <see cref="EnqueueAsync"/> waits (backpressure).
/// </remarks>
public sealed class KeyedWorkQueue<TValue> : IAsyncDisposable
{
    private readonly string _name;
    private readonly Func<string, TValue, CancellationToken, ValueTask> _handler;
    private readonly Func<TValue, TValue, TValue> _merge;
    private readonly PipelineInstruments _instruments;
    private readonly bool _ownsInstruments;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Channel<string> _ready = Channel.CreateUnbounded<string>();
    private readonly SemaphoreSlim _room;
    private readonly CancellationTokenSource _abort = new();
    private readonly Task[] _workers;
    private readonly TagList _tags;
    private readonly IDisposable _queueGauge;
    private int _waiting;
    private bool _stopping;
    private TaskCompletionSource? _drained;
    private TaskCompletionSource? _idle;

    public KeyedWorkQueue(
        string name,
        StageOptions options,
        Func<string, TValue, CancellationToken, ValueTask> handler,
        Func<TValue, TValue, TValue>? merge = null,
        PipelineInstruments? instruments = null,
        ILogger? logger = null,
        TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(handler);
        _name = name;
        _handler = handler;
        _merge = merge ?? ((_, newer) => newer);
        _ownsInstruments = instruments is null;
        _instruments = instruments ?? new PipelineInstruments(null);
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _time = time ?? TimeProvider.System;
        _room = new SemaphoreSlim(options.Capacity, options.Capacity);
        _tags = new TagList { { KrustletTelemetry.StageTag, name } };
        _queueGauge = _instruments.TrackQueue(name, KrustletTelemetry.ApplyPath, () => Volatile.Read(ref _waiting));
        _workers = [.. Enumerable.Range(0, options.Parallelism).Select(_ => WorkAsync())];
    }

    /// <summary>Keys waiting to be handled (not counting those being handled).</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Completes when no key is waiting or being handled.</summary>
    public Task WaitForIdleAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return _entries.Count == 0
                ? Task.CompletedTask
                : (_idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Adds <paramref name="value"/> for <paramref name="key"/>. Merges into the key's waiting value when it
    /// has one; otherwise waits for room. Throws <see cref="InvalidOperationException"/> once stopping.
    /// </summary>
    public async ValueTask EnqueueAsync(string key, TValue value, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (TryMerge(key, value))
        {
            return;
        }

        await _room.WaitAsync(cancellationToken);
        lock (_lock)
        {
            if (_stopping)
            {
                _room.Release();
                throw new InvalidOperationException($"The {_name} queue is stopping.");
            }

            if (_entries.TryGetValue(key, out var entry) && entry.HasValue)
            {
                // Another caller made the key wait while we waited for room.
                entry.Value = _merge(entry.Value!, value);
                _room.Release();
                return;
            }

            if (entry is null)
            {
                entry = new Entry();
                _entries.Add(key, entry);
            }

            entry.Value = value;
            entry.HasValue = true;
            _waiting++;
            if (!entry.Running)
            {
                _ready.Writer.TryWrite(key);
            }
        }
    }

    /// <summary>
    /// Stops taking values, handles what is waiting, and returns the keys still unhandled when
    /// <paramref name="timeout"/> passed (their handlers are then cancelled).
    /// </summary>
    public async Task<IReadOnlyList<string>> StopAsync(TimeSpan timeout)
    {
        TaskCompletionSource drained;
        lock (_lock)
        {
            _stopping = true;
            drained = _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (_entries.Count == 0)
            {
                drained.TrySetResult();
            }
        }

        using (var cts = new CancellationTokenSource())
        {
            var finished = await Task.WhenAny(drained.Task, Task.Delay(timeout, _time, cts.Token));
            await cts.CancelAsync();
            if (finished != drained.Task)
            {
                await _abort.CancelAsync();
            }
        }

        IReadOnlyList<string> left;
        lock (_lock)
        {
            left = [.. _entries.Keys];
        }

        _ready.Writer.TryComplete();
        await Task.WhenAll(_workers);
        return left;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.Zero);
        _queueGauge.Dispose();
        _abort.Dispose();
        _room.Dispose();
        if (_ownsInstruments)
        {
            _instruments.Dispose();
        }
    }

    private bool TryMerge(string key, TValue value)
    {
        lock (_lock)
        {
            if (_stopping)
            {
                throw new InvalidOperationException($"The {_name} queue is stopping.");
            }

            if (_entries.TryGetValue(key, out var entry) && entry.HasValue)
            {
                entry.Value = _merge(entry.Value!, value);
                return true;
            }

            return false;
        }
    }

    private async Task WorkAsync()
    {
        await Task.Yield();
        await foreach (var key in _ready.Reader.ReadAllAsync())
        {
            TValue value;
            lock (_lock)
            {
                var entry = _entries[key];
                value = entry.Value!;
                entry.Value = default;
                entry.HasValue = false;
                entry.Running = true;
                _waiting--;
            }

            _room.Release();
            var started = _time.GetTimestamp();
            _instruments.InFlight.Add(1, _tags);
            try
            {
                if (!_abort.IsCancellationRequested)
                {
                    await _handler(key, value, _abort.Token);
                }
            }
            catch (OperationCanceledException) when (_abort.IsCancellationRequested)
            {
                _instruments.Cancelled.Add(1, _tags);
            }
#pragma warning disable CA1031 // One key's failure must not stop the queue for every other key.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                _instruments.Failed.Add(1, _tags);
                PipelineLog.QueueHandlerThrew(_logger, _name, key, ex);
            }
            finally
            {
                _instruments.InFlight.Add(-1, _tags);
                _instruments.Processed.Add(1, _tags);
                _instruments.Duration.Record(_time.GetElapsedTime(started).TotalSeconds, _tags);
                Finish(key);
            }
        }
    }

    private void Finish(string key)
    {
        lock (_lock)
        {
            var entry = _entries[key];
            entry.Running = false;
            if (entry.HasValue)
            {
                _ready.Writer.TryWrite(key);
            }
            else
            {
                _entries.Remove(key);
                if (_entries.Count == 0)
                {
                    _drained?.TrySetResult();
                    _idle?.TrySetResult();
                    _idle = null;
                }
            }
        }
    }

    private sealed class Entry
    {
        public TValue? Value;
        public bool HasValue;
        public bool Running;
    }
}
