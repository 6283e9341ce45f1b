using k8s.Models;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Diagnostics;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;
using Krustlet.Pipeline.Queues;
using Krustlet.Stages.Run;
using Microsoft.Extensions.Logging;

namespace Krustlet.Stages.StatusReport;

/// <summary>
/// The last stage: turns what happened to a pod into a <see cref="PodReport"/> and writes it.
/// </summary>
/// <remarks>
/// Two inputs feed one keyed queue: results leaving the stage graph (<see cref="WriteAsync"/>) and
/// updates from outside it (<see cref="PublishAsync"/>: a container exited, a backoff expired). The
/// queue writes one report per pod at a time, in order, and coalesces a burst for one pod to its
/// latest report; when it is full, both inputs wait, which holds the graph back (backpressure).
/// A work item cancelled because its pod was deleted writes nothing: the deletion that follows it
/// writes the pod's final report.
/// </remarks>
public sealed class StatusReportStage : IResultSink<V1Pod>, IAsyncDisposable
{
    private readonly KeyedWorkQueue<PodReport> _queue;
    private readonly IPodRuntimeSource? _runtime;

    /// <param name="writer">Where reports are written.</param>
    /// <param name="options">The stage's parallelism and capacity.</param>
    /// <param name="runtime">
    /// Where pods' runtime status is read when a report is written, so a report that waited in the queue
    /// still carries the containers' latest states (the pipeline's run slot); none: reports are written as given.
    /// </param>
    /// <param name="instruments">The pipeline's metrics.</param>
    /// <param name="logger">The stage's logger.</param>
    /// <param name="time">The clock.</param>
    public StatusReportStage(IPodReportWriter writer, StageOptions options, IPodRuntimeSource? runtime = null, PipelineInstruments? instruments = null, ILogger? logger = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        _runtime = runtime;
        _queue = new KeyedWorkQueue<PodReport>(
            StageNames.StatusReport,
            options,
            (key, report, ct) => writer.WriteAsync(Refresh(key, report), ct),
            PodReport.Merge,
            instruments,
            logger,
            time);
    }

    /// <summary>Reports waiting to be written.</summary>
    public int Waiting => _queue.Waiting;

    /// <summary>Takes a result from the stage graph.</summary>
    public async ValueTask WriteAsync(WorkResult<V1Pod> result, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (ToReport(result) is { } report)
        {
            await _queue.EnqueueAsync(result.Key, report, cancellationToken);
        }
    }

    /// <summary>Takes an update that did not come through the graph.</summary>
    public ValueTask PublishAsync(PodReport report, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(report);
        return _queue.EnqueueAsync(report.Uid, report, cancellationToken);
    }

    /// <summary>Completes when every report taken so far has been written.</summary>
    public Task WaitForIdleAsync(CancellationToken cancellationToken = default) => _queue.WaitForIdleAsync(cancellationToken);

    /// <summary>Writes what is waiting, up to <paramref name="timeout"/>; returns the UIDs whose reports were not written.</summary>
    public Task<IReadOnlyList<string>> StopAsync(TimeSpan timeout) => _queue.StopAsync(timeout);

    public ValueTask DisposeAsync() => _queue.DisposeAsync();

    private PodReport Refresh(string uid, PodReport report) =>
        !report.IsFinal && _runtime?.Current(uid) is { } current ? report with { Runtime = current } : report;

    /// <summary>The report for a graph result, or null when there is nothing to say (cancelled work).</summary>
    public static PodReport? ToReport(WorkResult<V1Pod> result)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (result.Status == WorkStatus.Cancelled)
        {
            return null;
        }

        var pod = result.Item.Value;
        var kind = result.Kind == EventKind.Delete
            ? PodReportKind.Deleted
            : result.Status == WorkStatus.Failed ? PodReportKind.Failed : PodReportKind.Applied;
        var message = result.Failure is { } failure ? $"{failure.Stage}: {failure.Message}" : null;
        return new PodReport(
            result.Key,
            (pod?.Metadata).Namespace(),
            pod?.Metadata?.Name ?? string.Empty,
            kind,
            PodReportOrigin.Pipeline,
            result.Failure?.Reason,
            message,
            pod?.Metadata?.ResourceVersion,
            result.CompletedAt,
            kind == PodReportKind.Failed && pod is not null && ContainerWaitingReasons.Contains(result.Failure!.Reason)
                ? WaitingOn(pod, result.Failure.Reason, message!, result.Item.AdmittedAt)
                : result.Item.Get<PodRuntimeStatus>()); // the run stage's final view, on a teardown
    }

    /// <summary>Failures the kubelet shows as the containers' waiting reason, with the pod left Pending.</summary>
    public static IReadOnlySet<string> ContainerWaitingReasons { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        KubeletReasons.ContainerCreating, KubeletReasons.ErrImagePull, KubeletReasons.ImagePullBackOff, KubeletReasons.ErrImageNeverPull, KubeletReasons.InvalidImageName, KubeletReasons.CreateContainerConfigError, KubeletReasons.CreateContainerError,
    };

    private static PodRuntimeStatus WaitingOn(V1Pod pod, string reason, string message, DateTimeOffset since)
    {
        ContainerStatusSnapshot Waiting(V1Container c) => new(c.Name, new WaitingState(reason, message), null, 0, c.Image, string.Empty, null);
        return new PodRuntimeStatus(PodPhase.Pending, null, null, since, [.. (pod.Spec?.InitContainers ?? []).Select(Waiting)], [.. (pod.Spec?.Containers ?? []).Select(Waiting)]);
    }
}
