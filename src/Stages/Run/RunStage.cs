using System.Collections.Concurrent;
using k8s.Models;
using Krustlet.Pipeline.Engine;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.StatusReport;
using Krustlet.Stages.VolumeSetup;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Stages.Run;

/// <summary>
/// Starts a pod's containers on the executor pool and keeps them running per restartPolicy; on
/// teardown, stops them. Reads <see cref="CompiledModules"/>, <see cref="PulledImages"/> and, when the
/// volume stage gave it, <see cref="PreparedContainers"/>. Container state changes reach the status
/// stage as runtime reports, outside the graph.
/// </summary>
public sealed partial class RunStage : IPodRuntime, IPodUsageSource
{
    private readonly ExecutorPool _pool;
    private readonly RunOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, PodWorker> _workers = new(StringComparer.Ordinal);
    private readonly IPodStageContext _context;

    private readonly PodEvents.IPodEventRecorder _events;

    public RunStage(ExecutorPool pool, RunOptions options, IPodStageContext context, TimeProvider? time = null, ILogger? logger = null, PodEvents.IPodEventRecorder? events = null)
    {
        _events = events ?? PodEvents.NullPodEventRecorder.Instance;
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        _pool = pool;
        _options = options;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
    }

    public string Name => StageNames.Run;

    /// <summary>Pods with a worker (running, restarting or finished but not yet deleted).</summary>
    public int Pods => _workers.Count;

    /// <summary>The pod's current runtime status, or null when it has no worker.</summary>
    public PodRuntimeStatus? Current(string uid) => _workers.TryGetValue(uid, out var worker) ? worker.Snapshot() : null;

    /// <summary>Every pod with a worker, with its running containers' CPU and memory now.</summary>
    public IReadOnlyList<PodUsageSample> Usage() => [.. _workers.Values.Select(w => w.Usage())];

    public ValueTask<StageOutcome> ApplyAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        var pod = item.Value!;
        if (_workers.TryGetValue(item.Key, out var running))
        {
            // An update of a running pod: a container whose definition changed (its image, the one field
            // of a container Kubernetes lets change) is restarted on the new one.
            if (item.Get<CompiledModules>() is { } modules && item.Get<PulledImages>() is { } images)
            {
                running.Update(pod, modules, images, item.Get<PreparedContainers>());
            }

            return ValueTask.FromResult(StageOutcome.Continue);
        }

        if (item.Get<CompiledModules>() is not { } compiled || item.Get<PulledImages>() is not { } pulled)
        {
            return ValueTask.FromResult(StageOutcome.Fail(KubeletReasons.CreateContainerError, "no compiled modules for the pod's containers"));
        }

        var worker = new PodWorker(pod, compiled, pulled, item.Get<PreparedContainers>(), _pool, _options, _time, status => PublishAsync(item.Key, pod, status), _logger, _events);
        if (_workers.TryAdd(item.Key, worker))
        {
            worker.Start();
        }
        else
        {
            worker.Dispose();
        }

        return ValueTask.FromResult(StageOutcome.Continue);
    }

    public async ValueTask<StageOutcome> TeardownAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        if (!_workers.TryRemove(item.Key, out var worker))
        {
            return StageOutcome.Continue;
        }

        var grace = TimeSpan.FromSeconds(item.Value?.Spec?.TerminationGracePeriodSeconds ?? 30);
        var stopped = await worker.StopAsync("the pod is being deleted", grace);
        item.Set(worker.Snapshot()); // the final status: every container terminated
        worker.Forget();
        worker.Dispose();
        return stopped
            ? StageOutcome.Continue
            : StageOutcome.Fail(KubeletReasons.KillContainerError, $"containers did not stop within {grace.TotalSeconds}s");
    }

    /// <summary>Evicts a running pod (a volume over its limit): it fails with reason Evicted and its containers are killed.</summary>
    public async Task<bool> EvictAsync(string uid, string message)
    {
        if (!_workers.TryGetValue(uid, out var worker))
        {
            return false;
        }

        await worker.EvictAsync(message);
        return true;
    }

    /// <summary>
    /// Stops every pod's containers because the agent is stopping, waiting up to <paramref name="grace"/>
    /// for each. The pods keep their phase and saved state: a restarted agent re-adopts them. The saved
    /// states are flushed to disk before this completes, so a machine that goes down next keeps them.
    /// </summary>
    public async Task StopAllAsync(string reason, TimeSpan grace)
    {
        var workers = _workers.Values.ToList();
        _workers.Clear();
        await Task.WhenAll(workers.Select(async w =>
        {
            await w.SuspendAsync(reason, grace);
            w.Dispose();
        }));

        try
        {
            _options.State?.FlushToDisk();
        }
        catch (IOException ex)
        {
            Log.StateNotFlushed(_logger, ex);
        }
    }

    private ValueTask PublishAsync(string uid, V1Pod pod, PodRuntimeStatus status) => _context.PublishAsync(
        new PodReport(uid, pod.Namespace(), pod.Metadata.Name, PodReportKind.Updated, PodReportOrigin.Runtime, status.Reason, status.Message, pod.Metadata.ResourceVersion, _time.GetUtcNow(), status),
        CancellationToken.None);

    private static partial class Log
    {
        [LoggerMessage(2110, LogLevel.Warning, "The pods' saved states could not be flushed to disk at shutdown; a machine crash now may lose the last changes")]
        public static partial void StateNotFlushed(ILogger logger, Exception exception);
    }
}
