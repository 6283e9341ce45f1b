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

    /// <summary>The run's startup probe has succeeded, or the container has none (the default).</summary>
    public bool StartupPassed { get; init; } = true;

    /// <summary>
    /// The run's readiness: its readiness probe's result (false until it first succeeds) or true without
    /// one, and for an HTTP handler (<see cref="Http.HandlerPort"/>) its listener bound. True by default.
    /// </summary>
    public bool ReadinessPassed { get; init; } = true;

    /// <summary>Kubernetes' <c>started</c>, as the kubelet's prober manager sets it: running and its startup probe passed.</summary>
    public bool Started => Running && StartupPassed;

    /// <summary>Kubernetes' <c>ready</c>: started and ready by its readiness probe (and listener); the pod's Ready conditions follow.</summary>
    public bool Ready => Started && ReadinessPassed;
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
    IReadOnlyList<ContainerStatusSnapshot> Containers)
{
    private static readonly string[] ComputeResources = ["cpu", "memory"];

    /// <summary>Kubernetes' QoS class of the pod (Guaranteed, Burstable, BestEffort).</summary>
    public string? QosClass { get; init; }

    /// <summary>
    /// The QoS class as Kubernetes computes it: BestEffort when no container requests or limits cpu or
    /// memory; Guaranteed when every container limits both and its requests (defaulting to the limits)
    /// equal them; Burstable otherwise.
    /// </summary>
    public static string QosClassOf(k8s.Models.V1Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var containers = PodContainers.All(pod).ToList();
        static bool Has(IDictionary<string, k8s.Models.ResourceQuantity>? table, string name) => table is not null && table.ContainsKey(name);
        if (containers.All(c => !Has(c.Resources?.Requests, "cpu") && !Has(c.Resources?.Requests, "memory") && !Has(c.Resources?.Limits, "cpu") && !Has(c.Resources?.Limits, "memory")))
        {
            return "BestEffort";
        }

        var guaranteed = containers.All(c => ComputeResources.All(r =>
            c.Resources?.Limits is { } limits && limits.TryGetValue(r, out var limit)
            && (c.Resources.Requests is not { } requests || !requests.TryGetValue(r, out var request) || request.ToDecimal() == limit.ToDecimal())));
        return guaranteed ? "Guaranteed" : "Burstable";
    }
}
