using Microsoft.Extensions.Logging;

namespace Krustlet.Stages.Run;

/// <summary>
/// A pod's containers, its failure and its definitions, as its worker changes them. Every change is made
/// under one lock and saved to the state store in the same step (<see cref="SaveLocked"/>);
/// <see cref="Snapshot"/> reads under that lock, so no status shows a change the state file does not
/// hold. A restart is counted in the step that marks its run Running. Once the pod is suspended (agent
/// shutdown) or forgotten (deleted), nothing more is saved.
/// </summary>
internal sealed partial class PodRunState(
    string uid,
    string @namespace,
    string name,
    RestartPolicy restartPolicy,
    DateTimeOffset startTime,
    ContainerRun[] initContainers,
    ContainerRun[] containers,
    IReadOnlyDictionary<string, ContainerDefinition> definitions,
    PodFailure? failure,
    string qosClass,
    PodStateStore? store,
    ILogger logger)
{
    private readonly Lock _lock = new();
    private IReadOnlyDictionary<string, ContainerDefinition> _definitions = definitions;
    private PodFailure? _failure = failure;
    private bool _stopping;
    private PodPhaseResult? _suspended;
    private bool _saving = true;

    /// <summary>The pod's restartPolicy.</summary>
    public RestartPolicy RestartPolicy => restartPolicy;

    /// <summary>No container starts any more (the pod is deleted, evicted, past its deadline, or the agent is stopping).</summary>
    public bool Stopping => Volatile.Read(ref _stopping);

    public bool Failed
    {
        get
        {
            lock (_lock)
            {
                return _failure is not null;
            }
        }
    }

    public PodRuntimeStatus Snapshot()
    {
        lock (_lock)
        {
            var (init, apps, phase) = ShownLocked();
            return new PodRuntimeStatus(phase.Phase, phase.Reason, phase.Message, startTime, init, apps) { QosClass = qosClass };
        }
    }

    /// <summary>The running containers' usage now (init containers first); the counters are read without the guests' threads waiting.</summary>
    public PodUsageSample Usage()
    {
        lock (_lock)
        {
            return new PodUsageSample(uid, @namespace, name, startTime, [.. initContainers.Concat(containers)
                .Where(r => r.Control is not null && r.State is RunningState)
                .Select(r => new ContainerUsageSample(r.Name, ((RunningState)r.State).StartedAt, r.Control!.Usage.CpuNanoseconds, r.Control.Usage.MemoryBytes))]);
        }
    }

    /// <summary>Saves the state as it is (a re-adopted pod's carried-on counts, before anything can show them).</summary>
    public void Save()
    {
        lock (_lock)
        {
            SaveLocked();
        }
    }

    /// <summary>The pod fails as a whole; the first failure is kept.</summary>
    public void Fail(PodFailure podFailure)
    {
        lock (_lock)
        {
            _failure ??= podFailure;
            SaveLocked();
        }
    }

    /// <summary>Marks the pod stopping, so no container starts after this; returns the runs under way, to kill.</summary>
    public List<(string Name, ContainerControl Control)> BeginStop()
    {
        lock (_lock)
        {
            _stopping = true;
            return [.. containers.Concat(initContainers).Where(r => r.Control is not null).Select(r => (r.Name, r.Control!))];
        }
    }

    /// <summary>The agent is stopping: the phase shown stays what it is now and nothing more is saved.</summary>
    public void Suspend()
    {
        lock (_lock)
        {
            _suspended ??= ShownLocked().Phase;
            _saving = false;
        }
    }

    /// <summary>The pod is deleted: nothing more is saved, even by a run that outlives its grace period.</summary>
    public void StopSaving()
    {
        lock (_lock)
        {
            _saving = false;
        }
    }

    /// <summary>
    /// Marks the container's next run Running (counting it as a restart when one is due) and returns what
    /// to launch; null when the pod is stopping. The run starts not started and not ready when it has a
    /// startup or readiness probe, and not ready when it is an HTTP handler (until it serves).
    /// </summary>
    public ContainerLaunch? BeginRun(ContainerRun run, ContainerControl control, Func<int, string> logPath, LogRotationOptions rotation, DateTimeOffset now)
    {
        lock (_lock)
        {
            if (_stopping)
            {
                return null;
            }

            var definition = _definitions[run.Name];
            var restart = run.RestartCount + (run.RestartDue ? 1 : 0);
            var launch = definition.Launch(logPath(restart), rotation);
            try
            {
                CriLogWriter.Create(launch.LogPath); // the run's log exists once it can be shown Running: the kubelet API serves it as the current run
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Log.LogNotCreated(logger, uid, run.Name, launch.LogPath, ex.Message);
                Log.DataDirectoryFault(logger, ex);
                launch = launch with { LogProblem = $"cannot create the container's log {launch.LogPath}: {ex.Message}" };
            }
            run.Control = control;
            run.RestartCount = restart;
            run.RestartDue = false;
            run.Wake = null;
            run.Image = definition.Image;
            run.ContainerId = ContainerIds.Of(uid, run.Name, restart);
            run.State = new RunningState(now);
            run.Spec = definition.Spec;
            var app = containers.Contains(run); // init containers are never probed and never serve
            var probes = Probes.ContainerProbes.Of(definition.Spec);
            run.StartupPassed = !app || probes.Startup is null;
            run.ReadinessPassed = !app || probes.Readiness is null;
            run.WaitsForServing = app && Http.HandlerPort.Of(definition.Spec) is not null;
            SaveLocked();
            return launch;
        }
    }

    /// <summary>
    /// Takes a probe's result for the run <paramref name="control"/> controls: a startup success makes it
    /// started, a readiness result makes it ready or not. True when the status it shows changed (to publish);
    /// false too when that run has already ended.
    /// </summary>
    public bool SetProbeResult(ContainerRun run, ContainerControl control, Probes.ProbeKind kind, bool success)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(run.Control, control))
            {
                return false;
            }

            var before = run.Status(uid);
            switch (kind)
            {
                case Probes.ProbeKind.Startup:
                    run.StartupPassed |= success;
                    break;
                case Probes.ProbeKind.Readiness:
                    run.ReadinessPassed = success;
                    break;
                default:
                    return false;
            }

            var after = run.Status(uid);
            return before.Started != after.Started || before.Ready != after.Ready;
        }
    }

    /// <summary>Records how the run ended and decides what follows (<see cref="RestartDecision"/>).</summary>
    public RestartAction EndRun(ContainerRun run, ContainerExit exit, KillCause? cause, bool initContainer)
    {
        lock (_lock)
        {
            var action = RestartDecision.After(exit, cause, restartPolicy, initContainer, _stopping);
            var terminated = TerminatedState.From(exit, run.ContainerId);
            run.Control = null;
            if (action == RestartAction.Stop)
            {
                run.State = terminated;
            }
            else
            {
                run.LastState = terminated;
                run.RestartDue = true;
                if (action == RestartAction.RestartAfterBackoff)
                {
                    run.NextDelay = run.Backoff.Next(exit.FinishedAt - exit.StartedAt);
                    run.State = new WaitingState(KubeletReasons.CrashLoopBackOff, RestartDecision.BackOffMessage(run.NextDelay, run.Name, name, @namespace, uid));
                    run.Wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
                else
                {
                    run.State = new WaitingState(KubeletReasons.ContainerCreating, null);
                }
            }

            SaveLocked();
            return action;
        }
    }

    /// <summary>
    /// The run was stopped before its guest ran (it waited for an executor slot): it was already shown
    /// Running, so it ends as a killed run.
    /// </summary>
    public void EndUnstarted(ContainerRun run, ContainerControl control, DateTimeOffset now)
    {
        lock (_lock)
        {
            var startedAt = (run.State as RunningState)?.StartedAt ?? now;
            var exit = new ContainerExit(ExitKind.Killed, ContainerExit.KilledExitCode, KubeletReasons.Error, $"killed: {control.Cause?.Message ?? "the pod was stopped"}", startedAt, now);
            run.State = TerminatedState.From(exit, run.ContainerId);
            run.Control = null;
            SaveLocked();
        }
    }

    /// <summary>
    /// Takes a newer version of the pod's definitions. Returns the running app containers to kill (their
    /// definition changed) and the backoff waits to end (same reason); the changed containers' backoffs
    /// start over, since the kubelet keys backoff by the container's definition.
    /// </summary>
    public (List<(string Name, ContainerControl Control)> Kill, List<TaskCompletionSource> Wake) Update(IReadOnlyDictionary<string, ContainerDefinition> next)
    {
        List<(string Name, ContainerControl Control)> kill = [];
        List<TaskCompletionSource> wake = [];
        lock (_lock)
        {
            foreach (var run in initContainers.Concat(containers).Where(r => next[r.Name].RestartsOver(_definitions[r.Name])))
            {
                run.Backoff.Reset();
                if (run.ContainerId is null)
                {
                    run.Image = next[run.Name].Image; // not run yet: the status names the image it will run
                }

                if (run.Control is { } control && containers.Contains(run))
                {
                    kill.Add((run.Name, control));
                }
                else if (run.Wake is { } backingOff)
                {
                    wake.Add(backingOff);
                }
            }

            _definitions = next;
        }

        return (kill, wake);
    }

    private (ContainerStatusSnapshot[] Init, ContainerStatusSnapshot[] Apps, PodPhaseResult Phase) ShownLocked()
    {
        ContainerStatusSnapshot[] init = [.. initContainers.Select(r => Agreeing(r.Status(uid)))], apps = [.. containers.Select(r => Agreeing(r.Status(uid)))];
        return (init, apps, _suspended ?? PodPhaseCalculator.Compute(restartPolicy, init, apps, _failure));

        // A pod whose worker failed (InternalError) starts nothing more: a container still waiting to
        // start says why, rather than that it is being created.
        ContainerStatusSnapshot Agreeing(ContainerStatusSnapshot status) =>
            _failure is { Reason: KubeletReasons.InternalError } failure && status.State is WaitingState
                ? status with { State = new WaitingState(failure.Reason, failure.Message) }
                : status;
    }

    private void SaveLocked()
    {
        if (store is null || !_saving)
        {
            return;
        }

        try
        {
            store.Save(PodStateMapping.Save(uid, @namespace, name, startTime, initContainers, containers, _failure));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.StateNotSaved(logger, uid, ex.Message);
            Log.DataDirectoryFault(logger, ex);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(2102, LogLevel.Warning, "The state of pod {Uid} could not be saved ({Problem}); a restarted agent may lose its restart counts")]
        public static partial void StateNotSaved(ILogger logger, string uid, string problem);

        [LoggerMessage(2103, LogLevel.Warning, "The log of pod {Uid} container {Container} could not be created at {Path} ({Problem}); the run ends with StartError")]
        public static partial void LogNotCreated(ILogger logger, string uid, string container, string path, string problem);

        // The warning above says what; the stack says where, for whoever debugs the agent.
        [LoggerMessage(2104, LogLevel.Debug, "Data directory write failed")]
        public static partial void DataDirectoryFault(ILogger logger, Exception exception);
    }
}
