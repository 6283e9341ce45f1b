using System.Globalization;
using k8s.Models;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.VolumeSetup;
using Microsoft.Extensions.Logging;

namespace Krustlet.Stages.Run;

/// <summary>
/// Runs one pod's containers for as long as the pod lives: init containers one after another, then the
/// app containers together, each restarted per the pod's restartPolicy with CrashLoopBackOff, and
/// publishes the pod's phase and container statuses at every change.
/// </summary>
internal sealed partial class PodWorker : IDisposable
{
    private readonly V1Pod _pod;
    private readonly string _uid;
    private readonly string _restartPolicy;
    private readonly ExecutorPool _pool;
    private readonly RunOptions _options;
    private readonly TimeProvider _time;
    private readonly Func<PodRuntimeStatus, ValueTask> _publish;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly ContainerRun[] _init;
    private readonly ContainerRun[] _apps;
    private readonly DateTimeOffset _startTime;
    private readonly DateTimeOffset? _deadline;
    private readonly string _qosClass;
    private (string Reason, string Message)? _failure;
    private bool _stopping;
    private (PodPhase Phase, string? Reason, string? Message)? _suspended;
    private bool _saving = true;
    private Task _running = Task.CompletedTask;

    private readonly PodEvents.IPodEventRecorder _events;

    public PodWorker(V1Pod pod, CompiledModules compiled, PulledImages pulled, PreparedContainers? prepared, ExecutorPool pool, RunOptions options, TimeProvider time, Func<PodRuntimeStatus, ValueTask> publish, ILogger logger, PodEvents.IPodEventRecorder events)
    {
        _events = events;
        _pod = pod;
        _uid = pod.Metadata.Uid;
        _restartPolicy = pod.Spec.RestartPolicy ?? "Always";
        _pool = pool;
        _options = options;
        _time = time;
        _publish = publish;
        _logger = logger;
        var saved = options.State?.Load(_uid);
        _startTime = saved?.StartTime ?? time.GetUtcNow();
        _deadline = pod.Spec.ActiveDeadlineSeconds is { } seconds ? _startTime.AddSeconds(seconds) : null;
        _qosClass = PodRuntimeStatus.QosClassOf(pod);

        ContainerRun Prepare(V1Container container)
        {
            var image = pulled.ByContainer[container.Name];
            var env = prepared?.ByContainer.GetValueOrDefault(container.Name);
            return new ContainerRun(container, image, compiled.ByContainer[container.Name], env, new RestartBackoff(options.Backoff));
        }

        _init = [.. (pod.Spec.InitContainers ?? []).Select(Prepare)];
        _apps = [.. pod.Spec.Containers.Select(Prepare)];
        if (_init.Length > 0)
        {
            foreach (var app in _apps)
            {
                app.State = new WaitingState("PodInitializing", null);
            }
        }

        if (saved is not null)
        {
            Restore(saved);
        }
    }

    /// <summary>
    /// Re-adopts a pod the agent ran before it stopped: restart counts and last states carry on, finished
    /// containers stay finished, and a run that was under way (or waiting out its backoff) starts again,
    /// counted as a restart.
    /// </summary>
    private void Restore(SavedPod saved)
    {
        if (saved.FailureReason is not null)
        {
            _failure = (saved.FailureReason, saved.FailureMessage ?? string.Empty);
        }

        void Apply(ContainerRun[] runs, IReadOnlyList<SavedContainer> savedRuns)
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
                    run.LastState = new TerminatedState(ContainerExit.KilledExitCode, "Error", "The node agent stopped while the container was running.", since, _time.GetUtcNow(), $"wasm://{_uid}/{run.Name}/{container.RestartCount}");
                    run.RestartCount++;
                }
                else if (container.BackingOff)
                {
                    run.RestartCount++;
                }

                if (_failure is not null && !run.Done)
                {
                    run.Done = true; // a failed pod (evicted, past its deadline) runs nothing more
                }
            }
        }

        Apply(_init, saved.InitContainers);
        Apply(_apps, saved.Containers);
    }

    private SavedPod Save()
    {
        static SavedContainer Saved(ContainerRun run) => new(
            run.Name,
            run.RestartCount,
            run.LastState is null ? null : SavedTermination.From(run.LastState),
            run.State is TerminatedState terminated ? SavedTermination.From(terminated) : null,
            (run.State as RunningState)?.StartedAt,
            run.State is WaitingState { Reason: "CrashLoopBackOff" });

        return new SavedPod(_uid, _pod.Metadata.NamespaceProperty ?? "default", _pod.Metadata.Name, _startTime, [.. _init.Select(Saved)], [.. _apps.Select(Saved)], _failure?.Reason, _failure?.Message);
    }

    public string Uid => _uid;

    public void Start() => _running = Task.Run(RunAsync);

    /// <summary>Kills every container now (a guest cannot receive SIGTERM) and waits for the runs to end, up to <paramref name="grace"/>.</summary>
    public async Task<bool> StopAsync(string reason, TimeSpan grace)
    {
        StopAll(reason);

        try
        {
            await _running.WaitAsync(grace, _time);
            return true;
        }
        catch (TimeoutException)
        {
            Log.StopTimedOut(_logger, _uid, grace);
            return false;
        }
    }

    /// <summary>
    /// Stops the pod's containers because the agent is stopping, not the pod: its phase stays what it was
    /// and its saved state still shows the runs under way, so the next agent restarts them.
    /// </summary>
    /// <remarks>
    /// Every change was saved when it was made (<see cref="SaveLocked"/>), so the state file already holds
    /// what the pod looked like as the stop began; from here on nothing is saved, so the kills that
    /// follow are not mistaken by the next agent for the containers' own exits.
    /// </remarks>
    public Task<bool> SuspendAsync(string reason, TimeSpan grace)
    {
        lock (_lock)
        {
            _suspended ??= Phase();
            _saving = false;
        }

        return StopAsync(reason, grace);
    }

    /// <summary>
    /// Deletes the pod's saved state for good (the pod was deleted): nothing is saved after this, even
    /// by a run that outlived its grace period.
    /// </summary>
    public void Forget()
    {
        lock (_lock)
        {
            _saving = false;
        }

        _options.State?.Delete(_uid);
    }

    public void Dispose() => _stop.Dispose();

    /// <summary>
    /// Evicts the pod, as the kubelet's eviction manager does: the pod fails with reason Evicted and the
    /// message, its containers are killed and none restarts.
    /// </summary>
    public async Task EvictAsync(string message)
    {
        lock (_lock)
        {
            _failure ??= ("Evicted", message);
            SaveLocked();
        }

        StopAll($"evicted: {message}");
        await PublishAsync();
    }

    // Marks the pod stopping under the lock, so no container starts after this, then kills the running
    // ones and cancels backoff waits outside it (cancellation may run continuations inline).
    private void StopAll(string reason)
    {
        List<(string Name, ContainerControl Control)> running;
        lock (_lock)
        {
            _stopping = true;
            running = [.. _apps.Concat(_init).Where(r => r.Control is not null).Select(r => (r.Name, r.Control!))];
        }

        foreach (var (name, control) in running)
        {
            _events.Record(_pod, false, "Killing", $"Stopping container {name}", name);
            control.Kill(reason);
        }

        _stop.Cancel();
    }

    public PodRuntimeStatus Snapshot()
    {
        lock (_lock)
        {
            var (phase, reason, message) = _suspended ?? Phase();
            return new PodRuntimeStatus(phase, reason, message, _startTime, [.. _init.Select(r => r.Status(_uid))], [.. _apps.Select(r => r.Status(_uid))]) { QosClass = _qosClass };
        }
    }

    private (PodPhase Phase, string? Reason, string? Message) Phase()
    {
        if (_failure is { } failure)
        {
            return (PodPhase.Failed, failure.Reason, failure.Message);
        }

        if (_init.Any(r => r.State is not TerminatedState { ExitCode: 0 }))
        {
            return (_init.Any(r => r.State is TerminatedState) && _restartPolicy == "Never") ? (PodPhase.Failed, null, null) : (PodPhase.Pending, null, null);
        }

        if (_apps.All(r => r.State is TerminatedState))
        {
            return _apps.All(r => r.State is TerminatedState { ExitCode: 0 }) ? (PodPhase.Succeeded, null, null) : (PodPhase.Failed, null, null);
        }

        return _apps.Any(r => r.State is RunningState || r.LastState is not null) ? (PodPhase.Running, null, null) : (PodPhase.Pending, null, null);
    }

    private async Task RunAsync()
    {
        try
        {
            lock (_lock)
            {
                SaveLocked(); // a re-adopted pod's carried-on counts, before anything can show them
            }

            await PublishAsync();
            foreach (var init in _init)
            {
                if (!await RunUntilDoneAsync(init, restartOnSuccess: false))
                {
                    return;
                }
            }

            await Task.WhenAll(_apps.Select(app => RunUntilDoneAsync(app, restartOnSuccess: _restartPolicy == "Always")));
        }
#pragma warning disable CA1031 // A pod's worker must never take the agent down; its failure is the pod's.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.WorkerFailed(_logger, _uid, ex);
            lock (_lock)
            {
                _failure ??= ("InternalError", ex.Message);
                SaveLocked();
            }

            await PublishAsync();
        }
    }

    /// <summary>Runs a container until it is done for good. False when the pod cannot go on (failed, stopped).</summary>
    private async Task<bool> RunUntilDoneAsync(ContainerRun run, bool restartOnSuccess)
    {
        if (run.Done)
        {
            return run.State is TerminatedState { ExitCode: 0 } && _failure is null;
        }

        for (var again = false; ; again = true)
        {
            var exit = await RunOnceAsync(run, again);
            if (exit is null)
            {
                return false;
            }

            if (run.Control?.KillReason is { } why && why.StartsWith("DeadlineExceeded", StringComparison.Ordinal))
            {
                lock (_lock)
                {
                    _failure ??= ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline");
                    SaveLocked();
                }

                StopAll(why);
            }

            bool restart;
            lock (_lock)
            {
                restart = !_stopping && _restartPolicy != "Never" && (!exit.Succeeded || restartOnSuccess);
                var terminated = TerminatedState.From(exit, run.ContainerId);
                run.Control = null;
                if (restart)
                {
                    _events.Record(_pod, true, "BackOff", $"Back-off restarting failed container {run.Name} in pod {_pod.Metadata.Name}_{_pod.Metadata.NamespaceProperty ?? "default"}({_uid})", run.Name);
                    var delay = run.Backoff.Next(exit.FinishedAt - exit.StartedAt);
                    run.LastState = terminated;
                    run.State = new WaitingState("CrashLoopBackOff", string.Create(CultureInfo.InvariantCulture, $"back-off {delay.TotalSeconds:0.###}s restarting failed container={run.Name} pod={_pod.Metadata.Name}_{_pod.Metadata.NamespaceProperty ?? "default"}({_uid})"));
                    run.NextDelay = delay;
                }
                else
                {
                    run.State = terminated;
                }

                SaveLocked();
            }

            await PublishAsync();
            if (!restart)
            {
                return exit.Succeeded && !Volatile.Read(ref _stopping);
            }

            try
            {
                await Task.Delay(run.NextDelay, _time, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// Runs the container once; <paramref name="restart"/> counts the run as a restart, in the same step
    /// that marks it Running, so no saved or reported state shows the new count with the old wait.
    /// </summary>
    private async Task<ContainerExit?> RunOnceAsync(ContainerRun run, bool restart)
    {
        ContainerControl control;
        string logPath;
        lock (_lock)
        {
            if (_stopping)
            {
                return null;
            }

            // The run's log exists before the container can be seen Running (the kubelet API serves it
            // as the current run), so it is created first, under the lock that Snapshot reads under.
            var restarts = run.RestartCount + (restart ? 1 : 0);
            logPath = LogPath(run.Name, restarts);
            CriLogWriter.Create(logPath);

            control = new ContainerControl(_time, _deadline);
            run.Control = control;
            run.RestartCount = restarts;
            run.ContainerId = $"wasm://{_uid}/{run.Name}/{run.RestartCount}";
            run.State = new RunningState(_time.GetUtcNow());
            SaveLocked();
        }

        _events.Record(_pod, false, "Created", $"Created container {run.Name}", run.Name);
        _events.Record(_pod, false, "Started", $"Started container {run.Name}", run.Name);
        await PublishAsync();
        var launch = new ContainerLaunch(
            run.Name,
            run.Artifact,
            ContainerCommand.Argv(run.Spec, run.Image.Defaults, run.Image.ModuleName),
            run.Prepared?.Env ?? ImageEnvironment(run.Image.Defaults),
            run.Prepared?.Mounts ?? [],
            MemoryLimit(run.Spec),
            logPath,
            _options.LogRotation);
        try
        {
            return await _pool.RunAsync(launch, control, _stop.Token);
        }
        catch (OperationCanceledException)
        {
            // Stopped before its guest ran (waiting for an executor slot): it was already reported
            // Running, so it ends as a killed run, and that is published so no stale Running status stays.
            var now = _time.GetUtcNow();
            lock (_lock)
            {
                var startedAt = (run.State as RunningState)?.StartedAt ?? now;
                run.State = TerminatedState.From(new ContainerExit(ExitKind.Killed, ContainerExit.KilledExitCode, "Error", $"killed: {control.KillReason ?? "the pod was stopped"}", startedAt, now), run.ContainerId);
                run.Control = null;
                SaveLocked();
            }

            await PublishAsync();
            return null;
        }
    }

    /// <summary>The log file of one run of a container (<see cref="PodLogLayout"/>).</summary>
    public string LogPath(string container, int restart) =>
        PodLogLayout.RunLog(_options.LogRoot, _pod.Metadata.NamespaceProperty ?? "default", _pod.Metadata.Name, _uid, container, restart);

    private static long? MemoryLimit(V1Container container) =>
        container.Resources?.Limits is { } limits && limits.TryGetValue("memory", out var memory) ? memory.ToInt64() : null;

    private static IReadOnlyList<KeyValuePair<string, string>> ImageEnvironment(ImageDefaults defaults) =>
        [.. defaults.Env.Select(e => e.Split('=', 2)).Select(p => new KeyValuePair<string, string>(p[0], p.Length > 1 ? p[1] : string.Empty))];

    /// <summary>
    /// Saves the pod's state as it is now. Called under <see cref="_lock"/> by every change of a container
    /// or of the pod's failure, so no status (which is read under the same lock) can show a change the
    /// state file does not hold yet. Nothing is saved once the pod is suspended or forgotten.
    /// </summary>
    private void SaveLocked()
    {
        if (_options.State is not { } store || !_saving)
        {
            return;
        }

        try
        {
            store.Save(Save());
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.StateNotSaved(_logger, _uid, ex);
        }
    }

    private async ValueTask PublishAsync()
    {
        try
        {
            await _publish(Snapshot());
        }
        catch (InvalidOperationException)
        {
            // The status stage has stopped (agent shutdown); the next start reports afresh.
        }
    }

    private sealed class ContainerRun(V1Container spec, PulledImage image, CompiledArtifact artifact, PreparedContainer? prepared, RestartBackoff backoff)
    {
        public V1Container Spec { get; } = spec;

        public string Name => Spec.Name;

        public PulledImage Image { get; } = image;

        public CompiledArtifact Artifact { get; } = artifact;

        public PreparedContainer? Prepared { get; } = prepared;

        public RestartBackoff Backoff { get; } = backoff;

        public ContainerState State { get; set; } = new WaitingState("ContainerCreating", null);

        public TerminatedState? LastState { get; set; }

        public int RestartCount { get; set; }

        public string? ContainerId { get; set; }

        public ContainerControl? Control { get; set; }

        public TimeSpan NextDelay { get; set; }

        /// <summary>Finished before the agent restarted: it does not run again.</summary>
        public bool Done { get; set; }

        public ContainerStatusSnapshot Status(string uid) =>
            new(Name, State, LastState, RestartCount, Image.Image, Image.Digest, ContainerId ?? $"wasm://{uid}/{Name}/{RestartCount}");
    }

    private static partial class Log
    {
        [LoggerMessage(2100, LogLevel.Error, "The worker of pod {Uid} failed")]
        public static partial void WorkerFailed(ILogger logger, string uid, Exception exception);

        [LoggerMessage(2101, LogLevel.Warning, "Pod {Uid} did not stop within {Grace}; its threads end when their guests return to the host")]
        public static partial void StopTimedOut(ILogger logger, string uid, TimeSpan grace);

        [LoggerMessage(2102, LogLevel.Warning, "The state of pod {Uid} could not be saved; a restarted agent may lose its restart counts")]
        public static partial void StateNotSaved(ILogger logger, string uid, Exception exception);
    }
}
