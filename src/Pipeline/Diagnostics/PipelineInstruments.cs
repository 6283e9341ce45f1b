using System.Diagnostics.Metrics;

namespace Krustlet.Pipeline.Diagnostics;

/// <summary>
/// The engine's instruments, all on the <see cref="MeterName"/> meter and tagged with
/// <see cref="KrustletTelemetry.StageTag"/> (and <see cref="KrustletTelemetry.PathTag"/> for graph stages).
/// </summary>
public sealed class PipelineInstruments : IDisposable
{
    public const string MeterName = "Krustlet.Pipeline";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Lock _lock = new();
    private readonly List<(string Stage, string Path, Func<int> Depth)> _queues = [];

    /// <param name="meterFactory">The host's factory; without one the instruments own a private meter.</param>
    public PipelineInstruments(IMeterFactory? meterFactory)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);

        Processed = _meter.CreateCounter<long>("krustlet.stage.processed", "{item}", "Work items a stage finished, whatever the outcome.");
        Failed = _meter.CreateCounter<long>("krustlet.stage.failed", "{item}", "Work items a stage failed, including unexpected exceptions.");
        Cancelled = _meter.CreateCounter<long>("krustlet.stage.cancelled", "{item}", "Work items cancelled in a stage (their key was deleted, or shutdown).");
        InFlight = _meter.CreateUpDownCounter<long>("krustlet.stage.in_flight", "{item}", "Work items a stage is working on now.");
        Duration = _meter.CreateHistogram<double>("krustlet.stage.duration", "s", "Time a stage spent on one work item.");
        Events = _meter.CreateCounter<long>("krustlet.pipeline.events", "{event}", "Events offered to the per-key gate, by disposition (dispatched, pending, coalesced, dropped).");
        BackpressureWaits = _meter.CreateCounter<long>("krustlet.pipeline.backpressure_waits", "{wait}", "Times a sender had to wait because the first stage was full.");
        _meter.CreateObservableGauge("krustlet.stage.queue_depth", ObserveQueues, "{item}", "Work items waiting in a stage's input queue.");
    }

    /// <summary>The meter every instrument belongs to.</summary>
    public Meter Meter => _meter;

    public Counter<long> Processed { get; }

    public Counter<long> Failed { get; }

    public Counter<long> Cancelled { get; }

    public UpDownCounter<long> InFlight { get; }

    public Histogram<double> Duration { get; }

    public Counter<long> Events { get; }

    public Counter<long> BackpressureWaits { get; }

    /// <summary>Registers a queue whose depth the queue-depth gauge reports, until the registration is disposed.</summary>
    public IDisposable TrackQueue(string stage, string path, Func<int> depth)
    {
        var entry = (stage, path, depth);
        lock (_lock)
        {
            _queues.Add(entry);
        }

        return new Registration(this, entry);
    }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private void Untrack((string Stage, string Path, Func<int> Depth) entry)
    {
        lock (_lock)
        {
            _queues.Remove(entry);
        }
    }

    private sealed class Registration(PipelineInstruments owner, (string Stage, string Path, Func<int> Depth) entry) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Untrack(entry);
            }
        }
    }

    private List<Measurement<int>> ObserveQueues()
    {
        lock (_lock)
        {
            return [.. _queues.Select(q => new Measurement<int>(
                q.Depth(),
                new KeyValuePair<string, object?>(KrustletTelemetry.StageTag, q.Stage),
                new KeyValuePair<string, object?>(KrustletTelemetry.PathTag, q.Path)))];
        }
    }
}
