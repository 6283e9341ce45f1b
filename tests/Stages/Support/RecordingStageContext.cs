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

    public bool Reenter(string uid, string reason)
    {
        Reentries.Enqueue((uid, reason));
        return true;
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
