namespace Krustlet.Stages.Admission;

/// <summary>What admission checks besides what the node offers (<see cref="NodeAllocatable"/>).</summary>
public sealed record AdmissionOptions
{
    /// <summary>The most init and app containers one pod may have together (<c>Node:MaxContainersPerPod</c>).</summary>
    public int MaxContainersPerPod { get; init; } = PodValidation.DefaultMaxContainers;

    /// <summary>
    /// Whether pods may ask for outbound network with <see cref="OutboundNetwork.Annotation"/>
    /// (<c>Wasm:AllowNetwork</c>); when false such a pod is refused with <see cref="KubeletReasons.NetworkForbidden"/>.
    /// </summary>
    public bool AllowOutboundNetwork { get; init; } = true;

    /// <summary>
    /// The node's pressure conditions: while one holds, pods are refused as the kubelet's eviction manager
    /// refuses them (<see cref="Pressure.NodePressure.Admit"/>, reason <c>Evicted</c>). Null: never.
    /// </summary>
    public Pressure.NodePressure? Pressure { get; init; }

    /// <summary>The ports the agent itself listens on, which no HTTP handler may take.</summary>
    public ReservedPorts ReservedPorts { get; init; } = new();
}
