namespace Krustlet.Stages.Run;

/// <summary>Why a pod failed as a whole (not one container): its phase is Failed with this reason and message.</summary>
public sealed record PodFailure(string Reason, string Message)
{
    public static PodFailure DeadlineExceeded { get; } = new(KubeletReasons.DeadlineExceeded, "Pod was active on the node longer than the specified deadline");

    public static PodFailure Evicted(string message) => new(KubeletReasons.Evicted, message);

    /// <summary>The pod's worker failed: a bug of the agent, reported on the pod rather than taking the agent down.</summary>
    public static PodFailure Internal(string message) => new(KubeletReasons.InternalError, message);
}
