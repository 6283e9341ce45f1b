using k8s.Models;
using Krustlet.Stages.Run.Probes;
using Microsoft.Extensions.Logging;

namespace Krustlet.Stages.Run;

/// <summary>
/// Runs one container until it is done for good: each run is launched on the executor pool and its end
/// recorded in the pod's <see cref="PodRunState"/>, which decides (<see cref="RestartDecision"/>) whether
/// it restarts now, after its CrashLoopBackOff delay, or not at all; a run past the pod's deadline fails
/// the pod and stops the others. An app container's run is probed while it lasts (<see cref="RunHealth"/>).
/// </summary>
/// <param name="state">The pod's state, where every run begins and ends.</param>
/// <param name="pool">Where runs are launched.</param>
/// <param name="events">The container Events.</param>
/// <param name="pod">The pod's latest version, for the Events.</param>
/// <param name="overLimit">Measures the pod's size-limited volumes when a run ends: the eviction message when one is over its limit, else null.</param>
/// <param name="publish">Publishes the pod's status after a change.</param>
/// <param name="stopAll">Stops the pod's other containers (its deadline passed).</param>
/// <param name="logPath">The log file of a container's run number.</param>
/// <param name="rotation">Log rotation.</param>
/// <param name="time">The clock of the backoffs and the deadline.</param>
/// <param name="deadline">When the pod must stop (activeDeadlineSeconds), or null.</param>
/// <param name="podIp">Where probes reach the pod when they name no host.</param>
/// <param name="logger">Logging.</param>
/// <param name="stop">Cancelled when the pod stops.</param>
internal sealed class ContainerRestartLoop(
    PodRunState state,
    ExecutorPool pool,
    ContainerEvents events,
    Func<V1Pod> pod,
    Func<string?> overLimit,
    Func<ValueTask> publish,
    Action<KillCause> stopAll,
    Func<string, int, string> logPath,
    LogRotationOptions rotation,
    TimeProvider time,
    DateTimeOffset? deadline,
    string podIp,
    ILogger logger,
    CancellationToken stop)
{
    /// <summary>Runs a container until it is done for good. False when the pod cannot go on (failed, stopped).</summary>
    public async Task<bool> RunUntilDoneAsync(ContainerRun run, bool initContainer)
    {
        if (run.Done)
        {
            return run.State is TerminatedState { ExitCode: 0 } && !state.Failed;
        }

        while (true)
        {
            var (exit, cause) = await RunOnceAsync(run, initContainer);
            if (exit is null)
            {
                return false;
            }

            if (cause?.Kind == KillKind.DeadlineExceeded)
            {
                state.Fail(PodFailure.DeadlineExceeded);
                stopAll(cause);
            }

            // Checked before the run's end is recorded, as the kubelet's eviction manager would have
            // seen the volume: a pod past an emptyDir's sizeLimit is evicted, never reported Succeeded.
            if (overLimit() is { } eviction)
            {
                state.Fail(PodFailure.Evicted(eviction));
                stopAll(KillCause.Evicted(eviction));
            }

            var action = state.EndRun(run, exit, cause, initContainer);
            if (action == RestartAction.RestartAfterBackoff)
            {
                events.BackOff(pod(), run.Name);
            }

            await publish();
            if (action == RestartAction.Stop)
            {
                return exit.Succeeded && !state.Stopping;
            }

            if (action == RestartAction.RestartAfterBackoff && !await BackOffAsync(run))
            {
                return false;
            }
        }
    }

    /// <summary>Waits out the run's backoff, or less when woken (its definition changed). False when the pod stopped.</summary>
    private async Task<bool> BackOffAsync(ContainerRun run)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(stop);
        await Task.WhenAny(Task.Delay(run.NextDelay, time, timer.Token), run.Wake!.Task);
        await timer.CancelAsync(); // woken early: no timer is left behind
        return !stop.IsCancellationRequested;
    }

    /// <summary>Runs the container once; null when the pod is stopping, or stopped before the guest ran.</summary>
    private async Task<(ContainerExit? Exit, KillCause? Cause)> RunOnceAsync(ContainerRun run, bool initContainer)
    {
        var control = new ContainerControl(time, deadline);
        var startedAt = time.GetUtcNow();
        if (state.BeginRun(run, control, restart => logPath(run.Name, restart), rotation, startedAt) is not { } launch)
        {
            return (null, null);
        }

        if (launch.LogProblem is { } problem)
        {
            // Never shown Running: it ends at once, and the restart policy decides what follows.
            var now = time.GetUtcNow();
            return (new ContainerExit(ExitKind.FailedToStart, 128, KubeletReasons.StartError, problem, now, now), null);
        }

        events.Started(pod(), run.Name);
        // The probes' tickers start with the run, before it is shown Running; they stop before its end is recorded.
        RunHealth? health = initContainer ? null : RunHealth.Start(state, run, control, events, pod, publish, podIp, startedAt, time, logger);
        try
        {
            await publish();
            ContainerExit exit;
            try
            {
                exit = await pool.RunAsync(launch, control, stop);
            }
            finally
            {
                if (health is not null)
                {
                    await health.DisposeAsync();
                }
            }

            return (exit, control.Cause);
        }
        catch (OperationCanceledException)
        {
            // Stopped before its guest ran (waiting for an executor slot): it was already reported Running,
            // so it ends as a killed run, and that is published so no stale Running status stays.
            state.EndUnstarted(run, control, time.GetUtcNow());
            await publish();
            return (null, null);
        }
    }
}
