namespace Krustlet.Stages.Run;

/// <summary>
/// The kubelet's words the run side writes: waiting reasons, pod failure reasons and event reasons,
/// each stated once here.
/// </summary>
internal static class RunReasons
{
    /// <summary>Waiting: the container's run is being prepared.</summary>
    public const string ContainerCreating = "ContainerCreating";

    /// <summary>Waiting: an app container waits for the init containers.</summary>
    public const string PodInitializing = "PodInitializing";

    /// <summary>Waiting: the container waits out its restart backoff.</summary>
    public const string CrashLoopBackOff = "CrashLoopBackOff";

    /// <summary>Terminated: a run that did not end with exit code 0.</summary>
    public const string Error = "Error";

    /// <summary>Pod failure: the eviction manager (here: a volume over its size limit) evicted it.</summary>
    public const string Evicted = "Evicted";

    /// <summary>Pod failure: activeDeadlineSeconds passed.</summary>
    public const string DeadlineExceeded = "DeadlineExceeded";

    /// <summary>Pod failure: the pod's worker failed (a bug, not the pod's doing).</summary>
    public const string InternalError = "InternalError";

    /// <summary>Event: a container's run was created.</summary>
    public const string Created = "Created";

    /// <summary>Event: a container's run was started.</summary>
    public const string Started = "Started";

    /// <summary>Event: a container is being killed.</summary>
    public const string Killing = "Killing";

    /// <summary>Event (warning): a failed container waits before its restart.</summary>
    public const string BackOff = "BackOff";
}
