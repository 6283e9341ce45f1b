using Krustlet.Stages.Run;

namespace Krustlet.Stages.StatusReport;

/// <summary>What a report says happened to a pod.</summary>
public enum PodReportKind
{
    /// <summary>The pod's spec went through every stage.</summary>
    Applied,

    /// <summary>A stage failed for the pod; <see cref="PodReport.Reason"/> and <see cref="PodReport.Message"/> say why.</summary>
    Failed,

    /// <summary>The pod was torn down: its final report.</summary>
    Deleted,

    /// <summary>Something changed while no event was in flight (a container exited, a backoff expired).</summary>
    Updated,
}

/// <summary>Where a report came from.</summary>
public enum PodReportOrigin
{
    /// <summary>A work item leaving the stage graph.</summary>
    Pipeline,

    /// <summary>The agent's runtime, outside the graph (the executor pool, backoff timers).</summary>
    Runtime,
}

/// <summary>
/// One status report for one pod: what the status stage writes. It carries the pipeline's outcome
/// (reason and message) and, once the pod runs, its phase and container statuses (<see cref="Runtime"/>),
/// from which the Kubernetes integration computes the PodStatus.
/// </summary>
public sealed record PodReport(
    string Uid,
    string Namespace,
    string Name,
    PodReportKind Kind,
    PodReportOrigin Origin,
    string? Reason,
    string? Message,
    string? ResourceVersion,
    DateTimeOffset At,
    PodRuntimeStatus? Runtime = null)
{
    /// <summary>True for the last report a pod gets.</summary>
    public bool IsFinal => Kind == PodReportKind.Deleted;

    /// <summary>
    /// How a waiting report and a newer one combine (latest wins): a report from the runtime never
    /// replaces a waiting final report, since the pod it describes is already gone.
    /// </summary>
    public static PodReport Merge(PodReport waiting, PodReport newer)
    {
        ArgumentNullException.ThrowIfNull(waiting);
        ArgumentNullException.ThrowIfNull(newer);
        return waiting.IsFinal && newer.Origin == PodReportOrigin.Runtime ? waiting : newer;
    }
}

/// <summary>The run stage's view of running pods, read when a report is written so it is never stale.</summary>
public interface IPodRuntimeSource
{
    /// <summary>The pod's current runtime status, or null when no worker runs it.</summary>
    PodRuntimeStatus? Current(string uid);
}

/// <summary>Where reports go: the API server's pods/status in a cluster, memory in replays and tests.</summary>
public interface IPodReportWriter
{
    ValueTask WriteAsync(PodReport report, CancellationToken cancellationToken);
}

/// <summary>Keeps every report per pod, in order: the status timeline a replay prints and tests assert.</summary>
public sealed class InMemoryPodReportWriter : IPodReportWriter
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, List<PodReport>> _timelines = new(StringComparer.Ordinal);

    public ValueTask WriteAsync(PodReport report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        lock (_lock)
        {
            if (!_timelines.TryGetValue(report.Uid, out var timeline))
            {
                _timelines[report.Uid] = timeline = [];
            }

            timeline.Add(report);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Every pod's reports, in the order they were written.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<PodReport>> Timelines()
    {
        lock (_lock)
        {
            return _timelines.ToDictionary(p => p.Key, p => (IReadOnlyList<PodReport>)[.. p.Value], StringComparer.Ordinal);
        }
    }

    /// <summary>The last report written for the pod with this UID, or null.</summary>
    public PodReport? Final(string uid)
    {
        lock (_lock)
        {
            return _timelines.TryGetValue(uid, out var timeline) ? timeline[^1] : null;
        }
    }
}
