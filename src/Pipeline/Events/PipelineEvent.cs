namespace Krustlet.Pipeline.Events;

/// <summary>What an event asks of the pipeline for one key.</summary>
public enum EventKind
{
    /// <summary>Make the key's desired state real (created, changed, or asked to sync again).</summary>
    Upsert,

    /// <summary>Tear the key down. Never coalesced away; cancels the key's in-flight work.</summary>
    Delete,
}

/// <summary>Where an event came from.</summary>
public enum EventOrigin
{
    /// <summary>An event source: a watch, a replayed stream, a manifest directory.</summary>
    Source,

    /// <summary>The agent itself: a restart after backoff, a relist, a retry.</summary>
    Reentry,
}

/// <summary>
/// One event for one key (a pod UID). Sources produce these; the pipeline's per-key gate
/// decides when each becomes work.
/// </summary>
/// <typeparam name="T">The payload, for example a pod object.</typeparam>
public sealed record PipelineEvent<T>
{
    private PipelineEvent(string key, EventKind kind, T? value, EventOrigin origin, string? reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        Key = key;
        Kind = kind;
        Value = value;
        Origin = origin;
        Reason = reason;
    }

    /// <summary>The key that orders work: all events with one key are handled one at a time, in order.</summary>
    public string Key { get; }

    public EventKind Kind { get; }

    /// <summary>
    /// The payload. Always set for a source upsert; for a delete it is the last known object when the
    /// source has one; for a re-entry it is null and the gate uses the latest payload it knows.
    /// </summary>
    public T? Value { get; }

    public EventOrigin Origin { get; }

    /// <summary>Why a re-entry was asked for ("backoff expired", "relist"); null for source events.</summary>
    public string? Reason { get; }

    /// <summary>The key's desired state is this value.</summary>
    public static PipelineEvent<T> Upsert(string key, T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new(key, EventKind.Upsert, value, EventOrigin.Source, null);
    }

    /// <summary>The key is going away; <paramref name="lastKnown"/> is its last state when known.</summary>
    public static PipelineEvent<T> Delete(string key, T? lastKnown = default) =>
        new(key, EventKind.Delete, lastKnown, EventOrigin.Source, null);

    /// <summary>Run the key through the pipeline again with its latest known payload.</summary>
    public static PipelineEvent<T> Reenter(string key, string reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(reason);
        return new(key, EventKind.Upsert, default, EventOrigin.Reentry, reason);
    }
}
