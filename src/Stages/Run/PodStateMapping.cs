namespace Krustlet.Stages.Run;

/// <summary>
/// Maps a pod worker's containers to the <see cref="SavedPod"/> that <see cref="PodStateStore"/> keeps, and
/// back when a new worker re-adopts the pod after the agent restarted.
/// </summary>
internal static class PodStateMapping
{
    /// <summary>The last state of a run that was under way when the agent stopped.</summary>
    public const string AgentStoppedMessage = "The node agent stopped while the container was running.";

    /// <summary>The pod's state as it is now: restart counts, last and final terminations, the run under way or the restart due.</summary>
    public static SavedPod Save(string uid, string @namespace, string name, DateTimeOffset startTime, IReadOnlyList<ContainerRun> initContainers, IReadOnlyList<ContainerRun> containers, PodFailure? failure) =>
        new(uid, @namespace, name, startTime, [.. initContainers.Select(Saved)], [.. containers.Select(Saved)], failure?.Reason, failure?.Message);

    /// <summary>
    /// Re-adopts the saved state into a new worker's containers: restart counts and last states carry on,
    /// finished containers stay finished, a run that was under way (or a restart that was due) is counted
    /// as a restart now and runs again; a pod that had failed (evicted, past its deadline) runs nothing more.
    /// </summary>
    /// <returns>The pod's failure, if it had failed.</returns>
    public static PodFailure? Restore(SavedPod saved, IReadOnlyList<ContainerRun> initContainers, IReadOnlyList<ContainerRun> containers, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(saved);
        var failure = saved.FailureReason is { } reason ? new PodFailure(reason, saved.FailureMessage ?? string.Empty) : null;
        Apply(initContainers, saved.InitContainers);
        Apply(containers, saved.Containers);
        return failure;

        void Apply(IReadOnlyList<ContainerRun> runs, IReadOnlyList<SavedContainer> savedRuns)
        {
            foreach (var run in runs)
            {
                if (savedRuns.FirstOrDefault(s => s.Name == run.Name) is not { } container)
                {
                    continue;
                }

                run.RestartCount = container.RestartCount;
                run.LastState = container.LastState?.ToState();
                if (container.Terminated is { } terminated)
                {
                    run.State = terminated.ToState();
                    run.Done = true;
                }
                else if (container.RunningSince is { } since)
                {
                    run.LastState = new TerminatedState(ContainerExit.KilledExitCode, KubeletReasons.Error, AgentStoppedMessage, since, now, ContainerIds.Of(saved.Uid, run.Name, container.RestartCount));
                    run.RestartCount++;
                }
                else if (container.BackingOff)
                {
                    run.RestartCount++;
                }

                if (failure is not null && !run.Done)
                {
                    run.Done = true;
                }
            }
        }
    }

    private static SavedContainer Saved(ContainerRun run) => new(
        run.Name,
        run.RestartCount,
        run.LastState is null ? null : SavedTermination.From(run.LastState),
        run.State is TerminatedState terminated ? SavedTermination.From(terminated) : null,
        (run.State as RunningState)?.StartedAt,
        run.RestartDue);
}
