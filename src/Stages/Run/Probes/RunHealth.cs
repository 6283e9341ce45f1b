using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Krustlet.Stages.Run.Probes;

/// <summary>
/// One app container run's health, for as long as the run lasts: its <see cref="ContainerProber"/> when
/// it has probes, and for an HTTP handler the wait for its listener (<see cref="ContainerControl.Serving"/>).
/// What they learn becomes the run's <c>started</c> and <c>ready</c> (<see cref="PodRunState.SetProbeResult"/>,
/// published when they change), the kubelet's Unhealthy and ProbeWarning Events, and for a liveness or
/// startup failure a Killing Event and the kill (<see cref="KillKind.ProbeFailed"/>), after which the
/// container restarts as after any failure under the pod's restartPolicy.
/// </summary>
internal sealed class RunHealth : IProbeObserver, IAsyncDisposable
{
    private readonly PodRunState _state;
    private readonly ContainerRun _run;
    private readonly ContainerControl _control;
    private readonly ContainerEvents _events;
    private readonly Func<V1Pod> _pod;
    private readonly Func<ValueTask> _publish;
    private readonly CancellationTokenSource _stop = new();
    private ContainerProber? _prober;
    private Task _serving = Task.CompletedTask;

    private RunHealth(PodRunState state, ContainerRun run, ContainerControl control, ContainerEvents events, Func<V1Pod> pod, Func<ValueTask> publish)
    {
        _state = state;
        _run = run;
        _control = control;
        _events = events;
        _pod = pod;
        _publish = publish;
    }

    /// <summary>Starts watching the run that <see cref="PodRunState.BeginRun"/> just marked Running at <paramref name="startedAt"/>.</summary>
    public static RunHealth Start(PodRunState state, ContainerRun run, ContainerControl control, ContainerEvents events, Func<V1Pod> pod, Func<ValueTask> publish, string podIp, DateTimeOffset startedAt, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(run);
        var health = new RunHealth(state, run, control, events, pod, publish);
        if (run.Spec is { } spec)
        {
            var probes = ContainerProbes.Of(spec);
            if (probes.Any)
            {
                health._prober = ContainerProber.Start(probes, ProbeTarget.Of(spec, podIp), startedAt, health, time, logger);
            }

            if (run.WaitsForServing)
            {
                health._serving = health.PublishWhenServingAsync();
            }
        }

        return health;
    }

    public void Attempted(ProbeSpec probe, ProbeResult result) => _events.Probed(_pod(), _run.Name, probe, result);

    public void Waiting(ProbeKind kind)
    {
        // Nothing to do between turns.
    }

    public async ValueTask ResultAsync(ProbeKind kind, bool success)
    {
        if (!success && kind is ProbeKind.Liveness or ProbeKind.Startup)
        {
            if (_control.Cause is null && !_state.Stopping)
            {
                var cause = KillCause.ProbeFailed(_run.Name, kind == ProbeKind.Liveness ? "liveness" : "startup", _state.RestartPolicy != RestartPolicy.Never);
                _events.Killing(_pod(), _run.Name, cause);
                _control.Kill(cause);
            }

            return;
        }

        if (_state.SetProbeResult(_run, _control, kind, success))
        {
            await _publish();
        }
    }

    /// <summary>Stops the probes and the wait for the listener, and waits for them: nothing changes the run after this.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_prober is not null)
        {
            await _prober.DisposeAsync();
        }

        await _serving;
        _stop.Dispose();
    }

    private async Task PublishWhenServingAsync()
    {
        try
        {
            await _control.Serving.WaitAsync(_stop.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        await _publish(); // ready now, if started and ready by its probe
    }
}
