namespace Krustlet.Pipeline.Engine;

/// <summary>
/// One stage of the pipeline. The engine runs each stage in two Dataflow blocks, one on the apply
/// path (in stage order) and one on the teardown path (in reverse order, so resources are released in
/// the opposite order to the one they were acquired in). Both honour the stage's configured
/// parallelism and capacity.
/// </summary>
/// <remarks>
/// The engine never runs two calls for the same key at once, and calls for one key arrive in the order
/// their events did. An exception is caught at the stage boundary and becomes that key's failure; it
/// never faults the block.
/// </remarks>
public interface IStage<T>
{
    /// <summary>The stage's name; also its configuration section under <c>Pipeline:Stages</c>.</summary>
    string Name { get; }

    /// <summary>Moves the key towards its desired state. Called for upserts and re-entries.</summary>
    ValueTask<StageOutcome> ApplyAsync(WorkItem<T> item, CancellationToken cancellationToken);

    /// <summary>Releases what <see cref="ApplyAsync"/> acquired for the key. Called for deletions; must be idempotent.</summary>
    ValueTask<StageOutcome> TeardownAsync(WorkItem<T> item, CancellationToken cancellationToken);
}
