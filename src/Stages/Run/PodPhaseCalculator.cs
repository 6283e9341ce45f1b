namespace Krustlet.Stages.Run;

/// <summary>A pod's phase with the reason and message the pod's status shows beside it (set when the pod failed as a whole).</summary>
public sealed record PodPhaseResult(PodPhase Phase, string? Reason = null, string? Message = null);

/// <summary>
/// The pod's phase from its containers' states, as the kubelet's <c>getPhase</c> computes it for the
/// states this agent produces: a container waiting with a last state is restarting; a terminated one is
/// terminated for good (the worker only leaves a container terminated when it will not run again).
/// </summary>
public static class PodPhaseCalculator
{
    /// <summary>
    /// <list type="number">
    /// <item>a pod failure (evicted, past its deadline, the worker failed) → Failed with its reason;</item>
    /// <item>an init container failed under <see cref="RestartPolicy.Never"/> → Failed;</item>
    /// <item>an init container not yet succeeded → Pending;</item>
    /// <item>every app container terminated → Succeeded when all exited 0, else Failed;</item>
    /// <item>an app container running or restarting → Running;</item>
    /// <item>otherwise (none started yet) → Pending.</item>
    /// </list>
    /// Unlike the kubelet, an app container still being created beside a running one leaves the pod
    /// Running (the worker starts the app containers together, so that state lasts an instant).
    /// </summary>
    public static PodPhaseResult Compute(RestartPolicy policy, IReadOnlyList<ContainerStatusSnapshot> initContainers, IReadOnlyList<ContainerStatusSnapshot> containers, PodFailure? failure)
    {
        ArgumentNullException.ThrowIfNull(initContainers);
        ArgumentNullException.ThrowIfNull(containers);
        if (failure is not null)
        {
            return new(PodPhase.Failed, failure.Reason, failure.Message);
        }

        if (policy == RestartPolicy.Never && initContainers.Any(c => c.State is TerminatedState { ExitCode: not 0 }))
        {
            return new(PodPhase.Failed);
        }

        if (initContainers.Any(c => c.State is not TerminatedState { ExitCode: 0 }))
        {
            return new(PodPhase.Pending);
        }

        if (containers.All(c => c.State is TerminatedState))
        {
            return new(containers.All(c => c.State is TerminatedState { ExitCode: 0 }) ? PodPhase.Succeeded : PodPhase.Failed);
        }

        return new(containers.Any(c => c.State is RunningState || c.LastState is not null) ? PodPhase.Running : PodPhase.Pending);
    }
}
