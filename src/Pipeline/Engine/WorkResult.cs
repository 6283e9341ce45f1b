using Krustlet.Pipeline.Events;

namespace Krustlet.Pipeline.Engine;

/// <summary>How a work item left the pipeline.</summary>
public enum WorkStatus
{
    /// <summary>Every stage succeeded (or one finished it early).</summary>
    Succeeded,

    /// <summary>A stage failed; <see cref="WorkResult{T}.Failure"/> says which and why.</summary>
    Failed,

    /// <summary>The item was cancelled (its key was deleted, or the shutdown deadline passed).</summary>
    Cancelled,
}

/// <summary>What the status stage receives for every work item that leaves the stage graph.</summary>
public sealed record WorkResult<T>(WorkItem<T> Item, WorkStatus Status, DateTimeOffset CompletedAt)
{
    public string Key => Item.Key;

    public EventKind Kind => Item.Kind;

    public StageFailure? Failure => Item.Failure;

    internal static WorkResult<T> From(WorkItem<T> item, DateTimeOffset now) => new(
        item,
        item.CancelledIn is not null ? WorkStatus.Cancelled : item.Failure is not null ? WorkStatus.Failed : WorkStatus.Succeeded,
        now);
}

/// <summary>
/// The end of the stage graph: the status report stage. Results arrive in order for each key; a slow
/// sink holds results back and so applies backpressure to the whole graph.
/// </summary>
public interface IResultSink<T>
{
    ValueTask WriteAsync(WorkResult<T> result, CancellationToken cancellationToken);
}
