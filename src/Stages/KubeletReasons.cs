namespace Krustlet.Stages;

/// <summary>
/// The reasons the agent reports, spelled as the kubelet spells them (kubectl, dashboards and alerts
/// match on them): container waiting and terminated reasons, pod failure and admission reasons,
/// condition reasons and Event reasons. Every stage names a reason through this class.
/// </summary>
public static class KubeletReasons
{
    // A container waiting, with the pod Pending.

    /// <summary>An image reference that does not parse.</summary>
    public const string InvalidImageName = "InvalidImageName";

    /// <summary>An image pull failed.</summary>
    public const string ErrImagePull = "ErrImagePull";

    /// <summary>An image pull failed and the retry waits out its backoff.</summary>
    public const string ImagePullBackOff = "ImagePullBackOff";

    /// <summary>The pull policy is Never and the image is not on the node.</summary>
    public const string ErrImageNeverPull = "ErrImageNeverPull";

    /// <summary>A configMap, secret or key the container needs is missing, or its volumes are invalid.</summary>
    public const string CreateContainerConfigError = "CreateContainerConfigError";

    /// <summary>The container cannot be created: its module does not validate or compile.</summary>
    public const string CreateContainerError = "CreateContainerError";

    /// <summary>An app container not started yet.</summary>
    public const string ContainerCreating = "ContainerCreating";

    /// <summary>An app container waiting for the init containers.</summary>
    public const string PodInitializing = "PodInitializing";

    /// <summary>A container that ended waits out its restart delay.</summary>
    public const string CrashLoopBackOff = "CrashLoopBackOff";

    // A container terminated.

    /// <summary>It exited with code 0.</summary>
    public const string Completed = "Completed";

    /// <summary>It exited with another code, trapped or was killed.</summary>
    public const string Error = "Error";

    /// <summary>It could not start (no entry point, an import the node does not provide).</summary>
    public const string StartError = "StartError";

    /// <summary>It needed more memory than its limit allows (a declared memory or table over it).</summary>
    public const string OOMKilled = "OOMKilled";

    // The pod failed, or could not be stopped.

    /// <summary>The node evicted the pod (an emptyDir over its sizeLimit).</summary>
    public const string Evicted = "Evicted";

    /// <summary>The pod ran longer than its activeDeadlineSeconds.</summary>
    public const string DeadlineExceeded = "DeadlineExceeded";

    /// <summary>The pod's worker failed (a bug, not the pod's doing); the pipeline's name for an unexpected error.</summary>
    public const string InternalError = Krustlet.Pipeline.Engine.StageFailure.UnexpectedErrorReason;

    /// <summary>The pod's containers did not stop within its grace period.</summary>
    public const string KillContainerError = "KillContainerError";

    // Admission refused the pod.

    /// <summary>The node already runs its maxPods.</summary>
    public const string OutOfPods = "OutOfpods";

    /// <summary>The pod's CPU requests do not fit in what is left of the node's allocatable CPU.</summary>
    public const string OutOfCpu = "OutOfcpu";

    /// <summary>The pod's memory requests do not fit in what is left of the node's allocatable memory.</summary>
    public const string OutOfMemory = "OutOfmemory";

    /// <summary>The pod's names are not valid as the API server validates them (its <c>StatusReasonInvalid</c>).</summary>
    public const string Invalid = "Invalid";

    /// <summary>The pod is bound to another node.</summary>
    public const string NodeName = "NodeName";

    /// <summary>The pod asks for something a wasm sandbox cannot honour (hostNetwork, privileged, ...).</summary>
    public const string UnsupportedPodSpec = "UnsupportedPodSpec";

    /// <summary>
    /// A port the pod's HTTP handler needs is held by another pod on this node or by the agent itself
    /// (the kubelet's NodePorts predicate, whose name is the reason).
    /// </summary>
    public const string NodePorts = "NodePorts";

    /// <summary>
    /// The pod asks for outbound network (<see cref="OutboundNetwork"/>) and the node forbids it
    /// (<c>Wasm:AllowNetwork</c>), named as the kubelet names a node policy refusal (<c>SysctlForbidden</c>).
    /// </summary>
    public const string NetworkForbidden = "NetworkForbidden";

    // Condition reasons.

    /// <summary>ContainersReady and Ready are false: some container is not running and ready.</summary>
    public const string ContainersNotReady = "ContainersNotReady";

    /// <summary>Initialized is false: some init container has not succeeded.</summary>
    public const string ContainersNotInitialized = "ContainersNotInitialized";

    // Event reasons (the kubelet's event names in parentheses where they differ).

    /// <summary>An image pull starts (PullingImage).</summary>
    public const string PullingImage = "Pulling";

    /// <summary>An image was pulled (PulledImage).</summary>
    public const string PulledImage = "Pulled";

    /// <summary>An image pull failed (FailedToPullImage).</summary>
    public const string FailedToPullImage = "Failed";

    /// <summary>A container was created (CreatedContainer).</summary>
    public const string CreatedContainer = "Created";

    /// <summary>A container was started (StartedContainer).</summary>
    public const string StartedContainer = "Started";

    /// <summary>A failed container waits before its restart (BackOffStartContainer).</summary>
    public const string BackOffStartContainer = "BackOff";

    /// <summary>A container is being stopped (KillingContainer).</summary>
    public const string KillingContainer = "Killing";

    /// <summary>A probe attempt failed (ContainerUnhealthy), a Warning.</summary>
    public const string ContainerUnhealthy = "Unhealthy";

    /// <summary>A probe attempt succeeded with a warning: a redirect it did not follow (ContainerProbeWarning).</summary>
    public const string ContainerProbeWarning = "ProbeWarning";
}
