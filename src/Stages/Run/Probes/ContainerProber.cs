using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Krustlet.Stages.Run.Probes;

/// <summary>What a container's prober learns; the run stage turns it into status, Events and kills.</summary>
internal interface IProbeObserver
{
    /// <summary>An attempt that failed, warned or errored: the kubelet records an Event for each.</summary>
    void Attempted(ProbeSpec probe, ProbeResult result);

    /// <summary>
    /// The probe's result reached its threshold: a success after successThreshold successes in a row, a
    /// failure after failureThreshold failures in a row; again at every attempt past it (as the kubelet
    /// sets its result each time), so only a change matters. A liveness or startup failure is the last.
    /// </summary>
    ValueTask ResultAsync(ProbeKind kind, bool success);

    /// <summary>A worker has ended its turn (probed or skipped it) and waits for its next tick.</summary>
    void Waiting(ProbeKind kind);
}

/// <summary>
/// The probes of one container run, as the kubelet's probe workers (pkg/kubelet/prober/worker.go): one
/// worker per probe, each probing at once and then every periodSeconds on the injected clock (a ticker
/// started with the run, whose ticks do not pile up while a probe is slow). A worker skips its turn
/// while the run is younger than initialDelaySeconds; liveness and readiness skip theirs until the
/// startup probe has succeeded (a readiness probe then runs at once, as the kubelet triggers it), and the
/// startup probe stops once it has. Results count in runs of the same outcome against the thresholds;
/// an errored attempt (a port that resolves to nothing) is thrown away. A liveness or startup failure at
/// its threshold ends its worker: the run is being killed. The prober lives exactly as long as the run,
/// so a restarted container starts with fresh counts, not started and (with a readiness probe) not ready.
/// </summary>
internal sealed partial class ContainerProber : IAsyncDisposable
{
    private readonly ProbeTarget _target;
    private readonly DateTimeOffset _startedAt;
    private readonly IProbeObserver _observer;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<ITimer> _timers = [];
    private readonly List<Task> _workers = [];
    private Channel<bool>? _readinessWake;
    private volatile bool _started;

    private ContainerProber(ProbeTarget target, DateTimeOffset startedAt, IProbeObserver observer, TimeProvider time, ILogger logger, bool started)
    {
        _target = target;
        _startedAt = startedAt;
        _observer = observer;
        _time = time;
        _logger = logger;
        _started = started;
    }

    /// <summary>
    /// Starts the probes of a run that started at <paramref name="startedAt"/>. Every worker's ticker is
    /// created before this returns, so the schedule counts from the start (and a fake clock has the timers).
    /// </summary>
    public static ContainerProber Start(ContainerProbes probes, ProbeTarget target, DateTimeOffset startedAt, IProbeObserver observer, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(probes);
        var prober = new ContainerProber(target, startedAt, observer, time, logger, started: probes.Startup is null);
        var workers = probes.All.Select(spec => (Spec: spec, Wake: Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true }))).ToList();
        prober._readinessWake = workers.FirstOrDefault(w => w.Spec.Kind == ProbeKind.Readiness).Wake;
        foreach (var (spec, wake) in workers)
        {
            prober._timers.Add(time.CreateTimer(static w => ((ChannelWriter<bool>)w!).TryWrite(true), wake.Writer, spec.Period, spec.Period));
            prober._workers.Add(Task.Run(() => prober.WorkAsync(spec, wake.Reader)));
        }

        return prober;
    }

    /// <summary>Stops every worker (a probe under way is abandoned, its result ignored) and waits for them.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (var timer in _timers)
        {
            await timer.DisposeAsync();
        }

        await Task.WhenAll(_workers);
        _stop.Dispose();
    }

    private async Task WorkAsync(ProbeSpec spec, ChannelReader<bool> wake)
    {
        var token = _stop.Token;
        var run = new ResultRun();
        try
        {
            while (await ProbeOnceAsync(spec, run, token))
            {
                _observer.Waiting(spec.Kind);
                await wake.ReadAsync(token);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // The run ended.
        }
#pragma warning disable CA1031 // A prober must never take its pod's worker down; the probe just stops.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.ProbeWorkerFailed(_logger, spec.Name, ex);
        }
    }

    /// <summary>One turn of a worker (the kubelet's doProbe); false when the worker is done.</summary>
    private async Task<bool> ProbeOnceAsync(ProbeSpec spec, ResultRun run, CancellationToken token)
    {
        if (_time.GetUtcNow() - _startedAt < spec.InitialDelay)
        {
            return true;
        }

        if (spec.Kind == ProbeKind.Startup)
        {
            if (_started)
            {
                return false;
            }
        }
        else if (!_started)
        {
            return true;
        }

        var result = await ProbeAsync(spec, token);
        if (token.IsCancellationRequested)
        {
            return false;
        }

        if (result.Outcome != ProbeOutcome.Success)
        {
            _observer.Attempted(spec, result);
        }

        if (result.Outcome == ProbeOutcome.Error)
        {
            return true;
        }

        var success = result.Outcome != ProbeOutcome.Failure;
        if (run.Add(success) < (success ? spec.SuccessThreshold : spec.FailureThreshold))
        {
            return true;
        }

        await _observer.ResultAsync(spec.Kind, success);
        if (spec.Kind == ProbeKind.Startup && success)
        {
            _started = true;
            _readinessWake?.Writer.TryWrite(true);
            return false;
        }

        return success || spec.Kind == ProbeKind.Readiness;
    }

    private async Task<ProbeResult> ProbeAsync(ProbeSpec spec, CancellationToken token)
    {
        switch (spec.Action)
        {
            case HttpGetProbeAction get:
                {
                    if (!_target.TryResolvePort(get.Port, out var port, out var error))
                    {
                        return ProbeResult.Error(error);
                    }

                    var host = get.Host ?? _target.PodIp;
                    if (!HttpProbe.TryUrl(get.Scheme, host, port, get.Path, out var url))
                    {
                        return ProbeResult.Error($"parse \"{get.Scheme}://{ProbeTarget.JoinHostPort(host, port)}{get.Path}\": invalid URL");
                    }

                    if (get.Scheme is not ("http" or "https"))
                    {
                        return ProbeResult.Failure($"Get \"{url.AbsoluteUri}\": unsupported protocol scheme \"{get.Scheme}\"");
                    }

                    return await HttpProbe.GetAsync(url, get.Headers, spec.Timeout, token);
                }

            case TcpSocketProbeAction tcp:
                {
                    if (!_target.TryResolvePort(tcp.Port, out var port, out var error))
                    {
                        return ProbeResult.Error(error);
                    }

                    return await TcpProbe.ConnectAsync(tcp.Host ?? _target.PodIp, port, spec.Timeout, token);
                }

            default:
                return ProbeResult.Error("unsupported probe");
        }
    }

    /// <summary>The kubelet's lastResult and resultRun: how many attempts in a row had the same outcome.</summary>
    private sealed class ResultRun
    {
        private bool? _last;
        private int _count;

        public int Add(bool success)
        {
            _count = _last == success ? _count + 1 : 1;
            _last = success;
            return _count;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(2130, LogLevel.Error, "The {Probe} probe worker failed; the probe stops for this run")]
        public static partial void ProbeWorkerFailed(ILogger logger, string probe, Exception exception);
    }
}
