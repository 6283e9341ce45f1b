namespace Krustlet.Stages.Run;

/// <summary>A container's state, as in Kubernetes' ContainerState: exactly one of waiting, running, terminated.</summary>
public abstract record ContainerState;

/// <summary>Not running: being created, or waiting to restart (<c>CrashLoopBackOff</c>).</summary>
public sealed record WaitingState(string Reason, string? Message) : ContainerState;

public sealed record RunningState(DateTimeOffset StartedAt) : ContainerState;

public sealed record TerminatedState(int ExitCode, string Reason, string? Message, DateTimeOffset StartedAt, DateTimeOffset FinishedAt, string? ContainerId) : ContainerState
{
    public static TerminatedState From(ContainerExit exit, string? containerId)
    {
        ArgumentNullException.ThrowIfNull(exit);
        return new(exit.ExitCode, exit.Reason, exit.Message, exit.StartedAt, exit.FinishedAt, containerId);
    }
}

/// <summary>One container's status, with the fields the kubelet reports.</summary>
/// <param name="Name">The container's name.</param>
/// <param name="State">Its current state.</param>
/// <param name="LastState">How its previous run ended, once it has restarted.</param>
/// <param name="RestartCount">How many times it has been restarted.</param>
/// <param name="Image">The image as the pod names it.</param>
/// <param name="ImageId">The module digest.</param>
/// <param name="ContainerId"><c>wasm://&lt;pod uid&gt;/&lt;container&gt;/&lt;run&gt;</c> of the current or last run.</param>
public sealed record ContainerStatusSnapshot(
    string Name,
    ContainerState State,
    TerminatedState? LastState,
    int RestartCount,
    string Image,
    string ImageId,
    string? ContainerId)
{
    public bool Running => State is RunningState;

    /// <summary>Kubernetes' <c>started</c>: running (no startup probes here).</summary>
    public bool Started => Running;

    /// <summary>Kubernetes' <c>ready</c>: running (no readiness probes here).</summary>
    public bool Ready => Running;
}

/// <summary>Pod phases (Kubernetes' PodPhase; Unknown is never reported by a node for its own pods).</summary>
public enum PodPhase
{
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// <summary>What the run stage knows about a pod: its phase and every container's status.</summary>
public sealed record PodRuntimeStatus(
    PodPhase Phase,
    string? Reason,
    string? Message,
    DateTimeOffset StartTime,
    IReadOnlyList<ContainerStatusSnapshot> InitContainers,
    IReadOnlyList<ContainerStatusSnapshot> Containers);
