namespace Krustlet.Stages.Run;

/// <summary>Why the agent kills a container.</summary>
public enum KillKind
{
    /// <summary>The pod is stopping: deleted, or the agent is shutting down.</summary>
    Stopped,

    /// <summary>The pod was evicted.</summary>
    Evicted,

    /// <summary>The pod's activeDeadlineSeconds passed: the pod fails.</summary>
    DeadlineExceeded,

    /// <summary>The container's definition changed (its image): it is restarted on the new one.</summary>
    DefinitionChanged,

    /// <summary>Its liveness or startup probe failed: it restarts as after any failure, under the pod's restartPolicy.</summary>
    ProbeFailed,
}

/// <summary>
/// Why a container was killed, as a value: what it means for the pod is read from <see cref="Kind"/>;
/// <see cref="Message"/> is what the killed run's terminated state says after <c>killed: </c>.
/// </summary>
public sealed record KillCause(KillKind Kind, string Message)
{
    public static KillCause DeadlineExceeded { get; } = new(KillKind.DeadlineExceeded, $"{KubeletReasons.DeadlineExceeded}: the pod's activeDeadlineSeconds passed");

    /// <summary>The pod is stopping; <paramref name="reason"/> says why (deleted, agent shutting down).</summary>
    public static KillCause Stopped(string reason) => new(KillKind.Stopped, reason);

    public static KillCause Evicted(string message) => new(KillKind.Evicted, $"evicted: {message}");

    /// <summary>The kubelet's words, also the message of the Killing event.</summary>
    public static KillCause DefinitionChanged(string container) => new(KillKind.DefinitionChanged, $"Container {container} definition changed, will be restarted");

    /// <summary>
    /// The kubelet's words (also the Killing event's): "Container main failed liveness probe, will be
    /// restarted"; without ", will be restarted" when the restartPolicy is Never.
    /// </summary>
    /// <param name="container">The container's name.</param>
    /// <param name="probe">"liveness" or "startup".</param>
    /// <param name="restarts">Whether the restartPolicy restarts it (not Never).</param>
    public static KillCause ProbeFailed(string container, string probe, bool restarts) =>
        new(KillKind.ProbeFailed, $"Container {container} failed {probe} probe{(restarts ? ", will be restarted" : string.Empty)}");
}
