namespace Krustlet.Pipeline.Engine;

/// <summary>A stage's failure for one key, carried as a value to the status stage.</summary>
/// <param name="Stage">The stage that failed.</param>
/// <param name="Reason">A short machine-readable reason, as the kubelet would report it (for example "ErrImagePull").</param>
/// <param name="Message">A precise human-readable message.</param>
public sealed record StageFailure(string Stage, string Reason, string Message)
{
    /// <summary>The reason given to an exception a stage did not expect.</summary>
    public const string UnexpectedErrorReason = "InternalError";
}

/// <summary>What a stage decided for one work item.</summary>
public readonly record struct StageOutcome
{
    private StageOutcome(StageOutcomeKind kind, string? reason, string? message)
    {
        Kind = kind;
        Reason = reason;
        Message = message;
    }

    public StageOutcomeKind Kind { get; }

    /// <summary>The failure reason, for <see cref="StageOutcomeKind.Failed"/>.</summary>
    public string? Reason { get; }

    /// <summary>The failure message, for <see cref="StageOutcomeKind.Failed"/>.</summary>
    public string? Message { get; }

    /// <summary>Pass the item to the next stage.</summary>
    public static StageOutcome Continue { get; } = new(StageOutcomeKind.Continue, null, null);

    /// <summary>The work is complete; skip the remaining stages and report success.</summary>
    public static StageOutcome Done { get; } = new(StageOutcomeKind.Done, null, null);

    /// <summary>The work failed; the item goes straight to the status stage with this reason and message.</summary>
    public static StageOutcome Fail(string reason, string message)
    {
        ArgumentException.ThrowIfNullOrEmpty(reason);
        ArgumentException.ThrowIfNullOrEmpty(message);
        return new(StageOutcomeKind.Failed, reason, message);
    }
}

public enum StageOutcomeKind
{
    Continue,
    Done,
    Failed,
}
