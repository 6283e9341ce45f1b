using System.Collections.Concurrent;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.Support;

/// <summary>A pipeline for a stage tested on its own: records what the stage asked of it.</summary>
internal sealed class RecordingStageContext : IPodStageContext
{
    public ConcurrentQueue<(string Uid, string Reason)> Reentries { get; } = new();

    public ConcurrentQueue<PodReport> Published { get; } = new();

    public ConcurrentQueue<(string Uid, string Message)> Evictions { get; } = new();

    private readonly Lock _lock = new();
    private readonly List<(int Count, TaskCompletionSource Seen)> _waiters = [];

    public bool Reenter(string uid, string reason)
    {
        Reentries.Enqueue((uid, reason));
        lock (_lock)
        {
            foreach (var waiter in _waiters.Where(w => Reentries.Count >= w.Count).ToList())
            {
                waiter.Seen.TrySetResult();
                _waiters.Remove(waiter);
            }
        }

        return true;
    }

    /// <summary>Completes once the stage has asked for <paramref name="count"/> re-entries in all.</summary>
    public Task WaitForReentriesAsync(int count, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (Reentries.Count >= count)
            {
                return Task.CompletedTask;
            }

            var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, seen));
            return seen.Task.WaitAsync(cancellationToken);
        }
    }

    public ValueTask PublishAsync(PodReport report, CancellationToken cancellationToken)
    {
        Published.Enqueue(report);
        return ValueTask.CompletedTask;
    }

    public Task<bool> EvictAsync(string uid, string message)
    {
        Evictions.Enqueue((uid, message));
        return Task.FromResult(true);
    }

    public PodRuntimeStatus? Current(string uid) => null;
}
