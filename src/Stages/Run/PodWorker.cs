using k8s.Models;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.VolumeSetup;
using Microsoft.Extensions.Logging;

namespace Krustlet.Stages.Run;

/// <summary>
/// Runs one pod's containers for as long as the pod lives: init containers one after another, then the
/// app containers together, each by its <see cref="ContainerRestartLoop"/>; records the pod's
/// events (<see cref="ContainerEvents"/>) and publishes its status at every change. What the pod looks like, and saving it, is
/// <see cref="PodRunState"/>'s.
/// </summary>
internal sealed partial class PodWorker : IDisposable
{
    private readonly string _uid;
    private readonly string _namespace;
    private readonly string _name;
    private readonly RunOptions _options;
    private readonly TimeProvider _time;
    private readonly Func<PodRuntimeStatus, ValueTask> _publish;
    private readonly ILogger _logger;
    private readonly ContainerEvents _events;
    private readonly CancellationTokenSource _stop = new();
    private readonly ContainerRun[] _init;
    private readonly ContainerRun[] _apps;
    private readonly ContainerRestartLoop _loop;
    private readonly PodRunState _state;
    private volatile V1Pod _pod;
    private volatile PreparedContainers? _prepared;
    private Task _running = Task.CompletedTask;

    public PodWorker(V1Pod pod, CompiledModules compiled, PulledImages pulled, PreparedContainers? prepared, ExecutorPool pool, RunOptions options, TimeProvider time, Func<PodRuntimeStatus, ValueTask> publish, ILogger logger, PodEvents.IPodEventRecorder events)
    {
        _pod = pod;
        _prepared = prepared;
        _uid = pod.Metadata.Uid;
        _namespace = pod.Namespace();
        _name = pod.Metadata.Name;
        _options = options;
        _time = time;
        _publish = publish;
        _logger = logger;
        _events = new ContainerEvents(events);
        var saved = options.State?.Load(_uid);
        var startTime = saved?.StartTime ?? time.GetUtcNow();
        DateTimeOffset? deadline = pod.Spec.ActiveDeadlineSeconds is { } seconds ? startTime.AddSeconds(seconds) : null;
        var definitions = ContainerDefinition.Of(pod, compiled, pulled, prepared);
        ContainerRun Prepare(V1Container container, string waiting) => new(container.Name, definitions[container.Name].Image, new RestartBackoff(options.Backoff)) { State = new WaitingState(waiting, null) };
        _init = [.. (pod.Spec.InitContainers ?? []).Select(c => Prepare(c, KubeletReasons.ContainerCreating))];
        _apps = [.. pod.Spec.Containers.Select(c => Prepare(c, _init.Length > 0 ? KubeletReasons.PodInitializing : KubeletReasons.ContainerCreating))];
        var failure = saved is null ? null : PodStateMapping.Restore(saved, _init, _apps, time.GetUtcNow());
        _state = new PodRunState(_uid, _namespace, _name, RestartPolicies.Parse(pod.Spec.RestartPolicy), startTime, _init, _apps, definitions, failure, PodRuntimeStatus.QosClassOf(pod), options.State, logger);
        _loop = new ContainerRestartLoop(_state, pool, _events, () => _pod, () => _prepared?.OverLimit?.Invoke(), PublishAsync, StopAll, LogPath, options.LogRotation, time, deadline, options.PodIp, logger, _stop.Token);
    }

    public void Start() => _running = Task.Run(RunAsync);

    public PodRuntimeStatus Snapshot() => _state.Snapshot();

    public PodUsageSample Usage() => _state.Usage();

    /// <summary>Kills every container now (a guest cannot receive SIGTERM) and waits for the runs to end, up to <paramref name="grace"/>.</summary>
    public async Task<bool> StopAsync(string reason, TimeSpan grace)
    {
        StopAll(KillCause.Stopped(reason));
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
    public Task<bool> SuspendAsync(string reason, TimeSpan grace)
    {
        _state.Suspend();
        return StopAsync(reason, grace);
    }

    /// <summary>Deletes the pod's saved state for good (the pod was deleted): nothing is saved after this.</summary>
    public void Forget()
    {
        _state.StopSaving();
        _options.State?.Delete(_uid);
    }

    public void Dispose() => _stop.Dispose();

    /// <summary>Evicts the pod, as the kubelet's eviction manager does: the pod fails with reason Evicted and the message, its containers are killed and none restarts.</summary>
    public async Task EvictAsync(string message)
    {
        _state.Fail(PodFailure.Evicted(message));
        StopAll(KillCause.Evicted(message));
        await PublishAsync();
    }

    /// <summary>
    /// Takes a newer version of the pod (<see cref="PodRunState.Update"/>): a running app container whose
    /// definition changed is killed, with the kubelet's Killing event, and restarted at once on the new one.
    /// </summary>
    public void Update(V1Pod pod, CompiledModules compiled, PulledImages pulled, PreparedContainers? prepared)
    {
        _pod = pod;
        _prepared = prepared;
        var (kill, wake) = _state.Update(ContainerDefinition.Of(pod, compiled, pulled, prepared));
        foreach (var (name, control) in kill)
        {
            var cause = KillCause.DefinitionChanged(name);
            _events.Killing(pod, name, cause);
            control.Kill(cause);
        }

        wake.ForEach(w => w.TrySetResult());
    }

    /// <summary>The log file of one run of a container (<see cref="PodLogLayout"/>).</summary>
    private string LogPath(string container, int restart) => PodLogLayout.RunLog(_options.LogRoot, _namespace, _name, _uid, container, restart);

    // Marks the pod stopping, so no container starts after this, then kills the running ones and cancels
    // backoff waits outside the state's lock (cancellation may run continuations inline).
    private void StopAll(KillCause cause)
    {
        foreach (var (name, control) in _state.BeginStop())
        {
            _events.Stopping(_pod, name);
            control.Kill(cause);
        }

        _stop.Cancel();
    }

    private async Task RunAsync()
    {
        try
        {
            _state.Save();
            await PublishAsync();
            foreach (var init in _init)
            {
                if (!await _loop.RunUntilDoneAsync(init, initContainer: true))
                {
                    return;
                }
            }

            await Task.WhenAll(_apps.Select(app => _loop.RunUntilDoneAsync(app, initContainer: false)));
        }
#pragma warning disable CA1031 // A pod's worker must never take the agent down; its failure is the pod's.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.WorkerFailed(_logger, _uid, ex);
            _state.Fail(PodFailure.Internal(ex.Message));
            await PublishAsync();
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

    private static partial class Log
    {
        [LoggerMessage(2100, LogLevel.Error, "The worker of pod {Uid} failed")]
        public static partial void WorkerFailed(ILogger logger, string uid, Exception exception);

        [LoggerMessage(2101, LogLevel.Warning, "Pod {Uid} did not stop within {Grace}; its threads end when their guests return to the host")]
        public static partial void StopTimedOut(ILogger logger, string uid, TimeSpan grace);
    }
}
