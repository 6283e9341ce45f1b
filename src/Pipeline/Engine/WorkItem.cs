using Krustlet.Pipeline.Events;

namespace Krustlet.Pipeline.Engine;

/// <summary>
/// One unit of work for one key as it travels through the stages. Only one work item per key exists
/// at a time, so stages may read and write it without locks.
/// </summary>
public sealed class WorkItem<T>
{
    private Dictionary<Type, object>? _features;

    internal WorkItem(string key, EventKind kind, T? value, EventOrigin origin, string? reason, long sequence, long version, DateTimeOffset admittedAt, CancellationToken cancellationToken)
    {
        Key = key;
        Kind = kind;
        Value = value;
        Origin = origin;
        Reason = reason;
        Sequence = sequence;
        Version = version;
        AdmittedAt = admittedAt;
        CancellationToken = cancellationToken;
    }

    public string Key { get; }

    public EventKind Kind { get; }

    /// <summary>The payload. Set for every upsert; for a deletion, the last known object if any.</summary>
    public T? Value { get; }

    public EventOrigin Origin { get; }

    /// <summary>Why a re-entry was asked for; null for source events.</summary>
    public string? Reason { get; }

    /// <summary>How many work items this key has had before this one (0 for the first).</summary>
    public long Sequence { get; }

    /// <summary>The pipeline-wide admission number of the event this item carries; increases with event order.</summary>
    public long Version { get; }

    public DateTimeOffset AdmittedAt { get; }

    /// <summary>Cancelled when the key is deleted while this item is in flight, or at a shutdown deadline.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>The first failure, if any. On the apply path a failure ends the item's journey.</summary>
    public StageFailure? Failure { get; private set; }

    /// <summary>The stage in which the item was cancelled, if it was.</summary>
    public string? CancelledIn { get; private set; }

    /// <summary>True once a stage answered <see cref="StageOutcome.Done"/>.</summary>
    public bool Finished { get; private set; }

    /// <summary>Stages this item has passed through, in order; for tracing and tests.</summary>
    public IReadOnlyList<string> Trail => _trail;

    private readonly List<string> _trail = new(6);

    internal bool ContinuesOnApplyPath => Failure is null && CancelledIn is null && !Finished;

    internal bool ContinuesOnTeardownPath => CancelledIn is null;

    /// <summary>Publishes what a stage produced (a pulled image, a compiled module) for later stages.</summary>
    public void Set<TFeature>(TFeature feature) where TFeature : class
    {
        ArgumentNullException.ThrowIfNull(feature);
        (_features ??= [])[typeof(TFeature)] = feature;
    }

    /// <summary>Reads what an earlier stage published, or null.</summary>
    public TFeature? Get<TFeature>() where TFeature : class =>
        _features is not null && _features.TryGetValue(typeof(TFeature), out var value) ? (TFeature)value : null;

    internal void Record(string stage, StageOutcome outcome)
    {
        _trail.Add(stage);
        switch (outcome.Kind)
        {
            case StageOutcomeKind.Done:
                Finished = true;
                break;
            case StageOutcomeKind.Failed:
                Failure ??= new StageFailure(stage, outcome.Reason!, outcome.Message!);
                break;
        }
    }

    internal void RecordCancelled(string stage)
    {
        _trail.Add(stage);
        CancelledIn ??= stage;
    }

    internal void RecordFailure(StageFailure failure)
    {
        _trail.Add(failure.Stage);
        Failure ??= failure;
    }
}
