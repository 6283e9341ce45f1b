using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using k8s.Models;
using Krustlet.Pipeline.Events;
using Krustlet.Stages;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Host.Agent;

/// <summary>
/// The agent's own view of its pods, for the kubelet API's <c>/pods</c> and logs, the standalone table
/// and the <c>Krustlet.Node</c> metrics: it sees every pod the event source delivers and every status
/// report on its way to the real writer, which it then calls.
/// </summary>
public sealed class NodePods : IPodReportWriter, KubeletApi.IKubeletPods, IDisposable
{
    public const string MeterName = "Krustlet.Node";

    /// <summary>How many of a pod's latest status reports are kept for its timeline on the pipeline page.</summary>
    public const int TimelineLength = 32;

    /// <summary>The phases pods are counted by, in order.</summary>
    public static IReadOnlyList<string> Phases { get; } = ["Pending", "Running", "Succeeded", "Failed"];

    private readonly IPodReportWriter? _inner;
    private readonly PodStatusBuilder _statuses;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, Entry> _pods = new(StringComparer.Ordinal);
    private readonly Meter _meter;
    private readonly Histogram<double> _startLatency;

    /// <param name="inner">Where reports go next (the API server, memory), or null.</param>
    /// <param name="nodeIp">The node's IP, for the pods' status.</param>
    /// <param name="time">The clock.</param>
    /// <param name="meterFactory">Metrics.</param>
    public NodePods(IPodReportWriter? inner, string nodeIp, TimeProvider? time = null, IMeterFactory? meterFactory = null)
    {
        _inner = inner;
        _statuses = new PodStatusBuilder(nodeIp);
        _time = time ?? TimeProvider.System;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _startLatency = _meter.CreateHistogram<double>(
            "krustlet.pod.start.duration",
            unit: "s",
            description: "From the pod's first event to its first Running status written.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
        _meter.CreateObservableGauge("krustlet.pods", () => CountByPhase(true), unit: "{pod}", description: "Pods on this node by phase.");
    }

    /// <summary>Wraps the pipeline's event source so every pod it delivers is known here.</summary>
    public IEventSource<V1Pod> Observe(IEventSource<V1Pod> source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new ObservedSource(source, this);
    }

    /// <summary>Raised after every report is recorded (on the status stage's thread; keep handlers short).</summary>
    public event EventHandler? Changed;

    /// <summary>The pods on this node with their current status, oldest first.</summary>
    public IReadOnlyList<V1Pod> Pods() =>
        [.. _pods.Values.OrderBy(e => e.SeenAt).Select(e => e.WithStatus(_statuses))];

    public async ValueTask WriteAsync(PodReport report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (_inner is not null)
        {
            await _inner.WriteAsync(report, cancellationToken);
        }

        if (report.IsFinal)
        {
            _pods.TryRemove(report.Uid, out _);
        }
        else if (_pods.TryGetValue(report.Uid, out var entry))
        {
            entry.Record(report);
            if (report.Runtime?.Phase == PodPhase.Running && !entry.StartRecorded)
            {
                entry.StartRecorded = true;
                _startLatency.Record(_time.GetElapsedTime(entry.SeenTimestamp).TotalSeconds);
            }
        }

        Changed?.Invoke(this, EventArgs.Empty);
    }

    public void Dispose() => _meter.Dispose();

    /// <summary>How many pods are in each phase (every phase of <see cref="Phases"/>, zeros included).</summary>
    public IReadOnlyDictionary<string, int> CountByPhase()
    {
        var counts = Phases.ToDictionary(p => p, _ => 0, StringComparer.Ordinal);
        foreach (var entry in _pods.Values)
        {
            var phase = entry.Phase;
            counts[phase] = counts.GetValueOrDefault(phase) + 1;
        }

        return counts;
    }

    /// <summary>One page of the pods in <paramref name="phase"/> (null: every phase), oldest first, and how many there are in all.</summary>
    public (int Total, IReadOnlyList<PodSummary> Pods) Page(string? phase, int page, int size)
    {
        var matching = _pods
            .Where(p => phase is null || string.Equals(p.Value.Phase, phase, StringComparison.Ordinal))
            .OrderBy(p => p.Value.SeenAt)
            .ThenBy(p => p.Key, StringComparer.Ordinal)
            .ToList();
        return (matching.Count, [.. matching.Skip(Math.Max(0, page) * size).Take(size).Select(p => p.Value.Summary(p.Key))]);
    }

    /// <summary>A pod's summary, its containers and its latest status reports (oldest first), or null when it is not on the node.</summary>
    public (PodSummary Pod, IReadOnlyList<string> Containers, IReadOnlyList<PodReport> Timeline)? Detail(string uid) =>
        _pods.TryGetValue(uid, out var entry)
            ? (entry.Summary(uid), [.. (entry.Pod.Spec?.InitContainers ?? []).Concat(entry.Pod.Spec?.Containers ?? []).Select(c => c.Name)], entry.Timeline())
            : null;

    private IEnumerable<Measurement<int>> CountByPhase(bool _) =>
        CountByPhase().Select(c => new Measurement<int>(c.Value, new KeyValuePair<string, object?>("phase", c.Key)));

    private void Seen(PipelineEvent<V1Pod> evt)
    {
        if (evt.Kind == EventKind.Upsert && evt.Value is { } pod)
        {
            _pods.AddOrUpdate(evt.Key, _ => new Entry(pod, _time.GetUtcNow(), _time.GetTimestamp()), (_, existing) =>
            {
                existing.Pod = pod;
                return existing;
            });
        }
        else if (evt.Kind == EventKind.Delete && _pods.TryGetValue(evt.Key, out var entry))
        {
            entry.DeletingSince ??= _time.GetUtcNow();
        }
    }

    private sealed class Entry(V1Pod pod, DateTimeOffset seenAt, long seenTimestamp)
    {
        public V1Pod Pod { get; set; } = pod;

        public DateTimeOffset SeenAt { get; } = seenAt;

        public long SeenTimestamp { get; } = seenTimestamp;

        private readonly Queue<PodReport> _recent = new();

        public PodReport? Report { get; private set; }

        public bool StartRecorded { get; set; }

        public DateTimeOffset? DeletingSince { get; set; }

        public string Phase => Report?.Runtime?.Phase.ToString() ?? (Report?.Kind == PodReportKind.Failed ? "Failed" : "Pending");

        public void Record(PodReport report)
        {
            lock (_recent)
            {
                Report = report;
                _recent.Enqueue(report);
                if (_recent.Count > TimelineLength)
                {
                    _recent.Dequeue();
                }
            }
        }

        public IReadOnlyList<PodReport> Timeline()
        {
            lock (_recent)
            {
                return [.. _recent];
            }
        }

        public PodSummary Summary(string uid) => new(uid, Pod.Namespace(), Pod.Metadata?.Name ?? string.Empty, Phase, SeenAt);

        public V1Pod WithStatus(PodStatusBuilder statuses)
        {
            var pod = Pod;
            var metadata = pod.Metadata;
            if (DeletingSince is { } since && metadata.DeletionTimestamp is null)
            {
                // A copy: the pod object is the source's and may be shared.
                metadata = k8s.KubernetesJson.Deserialize<V1ObjectMeta>(k8s.KubernetesJson.Serialize(metadata));
                metadata.DeletionTimestamp = since.UtcDateTime;
            }

            var status = Report is { } report
                ? statuses.ToStatus(report)
                : new V1PodStatus { Phase = "Pending" };
            status.StartTime ??= SeenAt.UtcDateTime;
            return new V1Pod { ApiVersion = "v1", Kind = "Pod", Metadata = metadata, Spec = pod.Spec, Status = status };
        }
    }

    private sealed class ObservedSource(IEventSource<V1Pod> inner, NodePods pods) : IEventSource<V1Pod>
    {
        public string Name => inner.Name;

        public async IAsyncEnumerable<PipelineEvent<V1Pod>> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await foreach (var evt in inner.ReadAsync(cancellationToken))
            {
                pods.Seen(evt);
                yield return evt;
            }
        }
    }
}

/// <summary>One row of the pipeline page's pod table.</summary>
public sealed record PodSummary(string Uid, string Namespace, string Name, string Phase, DateTimeOffset SeenAt);
