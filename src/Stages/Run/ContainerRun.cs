using Krustlet.Stages.ImagePull;

namespace Krustlet.Stages.Run;

/// <summary>
/// One container of a pod's worker, across its runs: the state the status shows and what its next run
/// needs. Changed only under the worker's lock, and saved in the same step (<see cref="PodStateMapping"/>).
/// </summary>
internal sealed class ContainerRun(string name, PulledImage image, RestartBackoff backoff)
{
    public string Name { get; } = name;

    /// <summary>The image the status names: that of the run under way or the last one; before the first run, the definition's.</summary>
    public PulledImage Image { get; set; } = image;

    public RestartBackoff Backoff { get; } = backoff;

    public ContainerState State { get; set; } = new WaitingState(KubeletReasons.ContainerCreating, null);

    public TerminatedState? LastState { get; set; }

    public int RestartCount { get; set; }

    /// <summary>The id of the run under way or the last one; null before the first run.</summary>
    public string? ContainerId { get; set; }

    /// <summary>The run under way; null between runs.</summary>
    public ContainerControl? Control { get; set; }

    /// <summary>
    /// Its next run is a restart (after a backoff, or at once for a changed definition), counted in the
    /// step that marks that run Running. Saved, so a restarted agent counts it too.
    /// </summary>
    public bool RestartDue { get; set; }

    /// <summary>The backoff before the next restart, when it waits one.</summary>
    public TimeSpan NextDelay { get; set; }

    /// <summary>Ends the backoff wait early (the container's definition changed); null when not waiting.</summary>
    public TaskCompletionSource? Wake { get; set; }

    /// <summary>Finished before the agent restarted, or the pod had failed: it does not run again.</summary>
    public bool Done { get; set; }

    /// <summary>The container's spec for the run under way (its probes and ports); null before the first run.</summary>
    public k8s.Models.V1Container? Spec { get; set; }

    /// <summary>The run's startup probe has succeeded, or it has none. Reset at each run, never saved.</summary>
    public bool StartupPassed { get; set; } = true;

    /// <summary>The run's readiness probe's result (false before it first succeeds), or true without one. Reset at each run.</summary>
    public bool ReadinessPassed { get; set; } = true;

    /// <summary>The run is an HTTP handler's: it is ready only once its listener is bound (<see cref="ContainerControl.Serving"/>).</summary>
    public bool WaitsForServing { get; set; }

    public ContainerStatusSnapshot Status(string podUid) =>
        new(Name, State, LastState, RestartCount, Image.Image, Image.Digest, ContainerId ?? ContainerIds.Of(podUid, Name, RestartCount))
        {
            StartupPassed = StartupPassed,
            ReadinessPassed = ReadinessPassed && (!WaitsForServing || Control?.IsServing == true),
        };
}
