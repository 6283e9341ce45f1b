using System.Collections.Concurrent;
using Krustlet.Stages.Run;

namespace Krustlet.Stages;

/// <summary>
/// Runs pods through the pipeline again after a backoff (10 s doubling to 300 s by default), for stages
/// whose failures can heal on their own: an image that appears, a configMap that is created. Keys are
/// (pod UID, what failed); re-entry goes through the pipeline's per-pod gate.
/// </summary>
/// <param name="reenter">How to run a pod again: the pipeline's <see cref="IPodStageContext.Reenter"/>.</param>
/// <param name="backoff">The delays.</param>
/// <param name="time">The clock the delays are waited on.</param>
public sealed class PodRetry(Func<string, string, bool> reenter, RestartBackoffOptions? backoff = null, TimeProvider? time = null)
{
    private readonly RestartBackoffOptions _backoff = backoff ?? new();
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ConcurrentDictionary<(string Uid, string What), Entry> _entries = new();
    private readonly Func<string, string, bool> _reenter = reenter ?? throw new ArgumentNullException(nameof(reenter));

    /// <summary>True while a retry of <paramref name="what"/> for the pod is waiting.</summary>
    public bool IsWaiting(string uid, string what) =>
        _entries.TryGetValue((uid, what), out var entry) && _time.GetUtcNow() < entry.RetryAt;

    /// <summary>Starts (or lengthens) the backoff and schedules the pod's re-entry when it expires.</summary>
    public TimeSpan Schedule(string uid, string what, string reason)
    {
        var entry = _entries.GetOrAdd((uid, what), _ => new Entry(new RestartBackoff(_backoff)));
        lock (entry)
        {
            var delay = entry.Delays.Next(TimeSpan.Zero);
            entry.RetryAt = _time.GetUtcNow() + delay;
            entry.Timer?.Dispose();
            entry.Timer = _time.CreateTimer(_ => _reenter(uid, reason), null, delay, Timeout.InfiniteTimeSpan);
            return delay;
        }
    }

    /// <summary>Runs the pod again as soon as its current work is done.</summary>
    public bool ReenterNow(string uid, string reason) => _reenter(uid, reason);

    /// <summary>Ends one backoff (the thing succeeded).</summary>
    public void Clear(string uid, string what)
    {
        if (_entries.TryRemove((uid, what), out var entry))
        {
            entry.Timer?.Dispose();
        }
    }

    /// <summary>Ends every backoff of the pod (it is going away).</summary>
    public void ClearPod(string uid)
    {
        foreach (var key in _entries.Keys.Where(k => k.Uid == uid))
        {
            Clear(key.Uid, key.What);
        }
    }

    private sealed class Entry(RestartBackoff delays)
    {
        public RestartBackoff Delays { get; } = delays;

        public DateTimeOffset RetryAt { get; set; }

        public ITimer? Timer { get; set; }
    }
}
