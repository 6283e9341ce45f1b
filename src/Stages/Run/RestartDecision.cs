using System.Globalization;

namespace Krustlet.Stages.Run;

/// <summary>What follows a container's run.</summary>
public enum RestartAction
{
    /// <summary>The container is done: it stays terminated.</summary>
    Stop,

    /// <summary>It runs again at once, counted as a restart (its definition changed).</summary>
    RestartNow,

    /// <summary>It runs again after its CrashLoopBackOff delay, counted as a restart.</summary>
    RestartAfterBackoff,
}

/// <summary>The per-container restart rule: the kubelet's restartPolicy, a kill's cause and whether the pod is stopping.</summary>
public static class RestartDecision
{
    /// <summary>
    /// <list type="bullet">
    /// <item>the pod is stopping (deleted, evicted, past its deadline, the agent stopping) → stop;</item>
    /// <item>killed because its definition changed → restart now, whatever the policy (as the kubelet does);</item>
    /// <item>killed by a failed liveness or startup probe → as a failure, below;</item>
    /// <item>killed for any other cause → stop;</item>
    /// <item><see cref="RestartPolicy.Never"/> → stop;</item>
    /// <item>a success of an init container, or of an app container under <see cref="RestartPolicy.OnFailure"/> → stop;</item>
    /// <item>otherwise (a failure, or any exit under <see cref="RestartPolicy.Always"/>) → restart after the backoff.</item>
    /// </list>
    /// </summary>
    public static RestartAction After(ContainerExit exit, KillCause? cause, RestartPolicy policy, bool initContainer, bool podStopping)
    {
        ArgumentNullException.ThrowIfNull(exit);
        if (podStopping)
        {
            return RestartAction.Stop;
        }

        if (cause is not null && cause.Kind != KillKind.ProbeFailed)
        {
            return cause.Kind == KillKind.DefinitionChanged ? RestartAction.RestartNow : RestartAction.Stop;
        }

        if (policy == RestartPolicy.Never)
        {
            return RestartAction.Stop;
        }

        var restartOnSuccess = !initContainer && policy == RestartPolicy.Always;
        return exit.Succeeded && !restartOnSuccess ? RestartAction.Stop : RestartAction.RestartAfterBackoff;
    }

    /// <summary>The waiting message of a container backing off, in the kubelet's words.</summary>
    public static string BackOffMessage(TimeSpan delay, string container, string podName, string podNamespace, string podUid) =>
        string.Create(CultureInfo.InvariantCulture, $"back-off {delay.TotalSeconds:0.###}s restarting failed container={container} pod={podName}_{podNamespace}({podUid})");
}
