using System.Diagnostics.Metrics;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Diagnostics;

namespace Krustlet.Host.PipelinePage;

/// <summary>One stage as the page draws it.</summary>
/// <param name="Name">The stage.</param>
/// <param name="QueueDepth">Items waiting for a slot (<c>krustlet.stage.queue_depth</c>, every path).</param>
/// <param name="InFlight">Items being worked on (<c>krustlet.stage.in_flight</c>).</param>
/// <param name="Parallelism">The stage's slots.</param>
/// <param name="Capacity">How many items the stage holds before senders wait.</param>
/// <param name="Processed">Items finished since the agent started (<c>krustlet.stage.processed</c>).</param>
/// <param name="PerSecond">Items finished per second over the last interval.</param>
/// <param name="P50Milliseconds">Median time in the stage over the recent window (<c>krustlet.stage.duration</c>); null with no items.</param>
/// <param name="P99Milliseconds">99th percentile, likewise.</param>
public sealed record StageView(string Name, long QueueDepth, long InFlight, int Parallelism, int Capacity, long Processed, double PerSecond, double? P50Milliseconds, double? P99Milliseconds)
{
    /// <summary>How saturated the stage is: its busy slots and its queue, per slot.</summary>
    public double Load => Parallelism == 0 ? 0 : (double)(InFlight + QueueDepth) / Parallelism;
}

/// <summary>
/// Reads the pipeline's own instruments (meter <see cref="PipelineInstruments.MeterName"/>) with a
/// <see cref="MeterListener"/>: queue depth, in-flight items, items processed and stage durations, per
/// stage and summed over the apply, teardown and exit paths. Nothing is counted twice: the page shows
/// what <c>/metrics</c> exports.
/// </summary>
public sealed class PipelineMonitor : IDisposable
{
    /// <summary>Stage durations kept per stage for the percentiles (the most recent ones).</summary>
    public const int DurationWindow = 2048;

    private readonly MeterListener _listener = new();
    private readonly IReadOnlyList<string> _stages;
    private readonly PipelineOptions _options;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, Figures> _figures;
    private long _lastSnapshot;

    /// <param name="meter">The pipeline's meter (<see cref="PipelineInstruments.Meter"/>).</param>
    /// <param name="stages">The stages in apply order, the status stage last.</param>
    /// <param name="options">Their parallelism and capacity.</param>
    /// <param name="time">The clock for the rates.</param>
    public PipelineMonitor(Meter meter, IReadOnlyList<string> stages, PipelineOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(meter);
        ArgumentNullException.ThrowIfNull(stages);
        ArgumentNullException.ThrowIfNull(options);
        _stages = stages;
        _options = options;
        _time = time ?? TimeProvider.System;
        _figures = stages.ToDictionary(s => s, _ => new Figures(), StringComparer.Ordinal);
        _lastSnapshot = _time.GetTimestamp();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == meter && instrument.Name is "krustlet.stage.queue_depth" or "krustlet.stage.in_flight" or "krustlet.stage.processed" or "krustlet.stage.duration")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument.Name, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument.Name, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument.Name, value, tags));
        _listener.Start();
    }

    /// <summary>Every stage now; rates are over the time since the previous call.</summary>
    public IReadOnlyList<StageView> Snapshot()
    {
        foreach (var figures in _figures.Values)
        {
            figures.StartQueueReading();
        }

        _listener.RecordObservableInstruments();
        var now = _time.GetTimestamp();
        var seconds = Math.Max(_time.GetElapsedTime(_lastSnapshot, now).TotalSeconds, 1e-3);
        _lastSnapshot = now;
        return [.. _stages.Select(name =>
        {
            var figures = _figures[name];
            var options = _options.For(name);
            var (processed, delta, p50, p99) = figures.Read();
            return new StageView(name, figures.QueueDepth, figures.InFlight, options.Parallelism, options.Capacity, processed, delta / seconds, p50, p99);
        })];
    }

    /// <summary>The stage holding pods back: the most loaded one whose slots are all busy or that has a queue; null when none is.</summary>
    public static string? Bottleneck(IReadOnlyList<StageView> stages)
    {
        ArgumentNullException.ThrowIfNull(stages);
        var busiest = stages.Where(s => s.QueueDepth > 0 || (s.Parallelism > 0 && s.InFlight >= s.Parallelism)).MaxBy(s => s.Load);
        return busiest?.Name;
    }

    public void Dispose() => _listener.Dispose();

    private void Record(string instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string? stage = null;
        foreach (var tag in tags)
        {
            if (tag.Key == KrustletTelemetry.StageTag)
            {
                stage = tag.Value as string;
            }
        }

        if (stage is null || !_figures.TryGetValue(stage, out var figures))
        {
            return;
        }

        switch (instrument)
        {
            case "krustlet.stage.queue_depth":
                figures.AddQueue((long)value);
                break;
            case "krustlet.stage.in_flight":
                Interlocked.Add(ref figures.InFlight, (long)value);
                break;
            case "krustlet.stage.processed":
                Interlocked.Add(ref figures.Processed, (long)value);
                break;
            case "krustlet.stage.duration":
                figures.AddDuration(value * 1000);
                break;
            default:
                break;
        }
    }

    private sealed class Figures
    {
        private readonly Lock _lock = new();
        private readonly double[] _durations = new double[DurationWindow];
        private int _count;
        private int _next;
        private long _queue;
        private long _reported;

        public long InFlight;
        public long Processed;

        public long QueueDepth => Interlocked.Read(ref _queue);

        public void StartQueueReading() => Interlocked.Exchange(ref _queue, 0);

        public void AddQueue(long depth) => Interlocked.Add(ref _queue, depth);

        public void AddDuration(double milliseconds)
        {
            lock (_lock)
            {
                _durations[_next] = milliseconds;
                _next = (_next + 1) % _durations.Length;
                _count = Math.Min(_count + 1, _durations.Length);
            }
        }

        public (long Processed, long Delta, double? P50, double? P99) Read()
        {
            var processed = Interlocked.Read(ref Processed);
            var delta = processed - _reported;
            _reported = processed;
            double[] recent;
            lock (_lock)
            {
                recent = _durations[.._count];
            }

            if (recent.Length == 0)
            {
                return (processed, delta, null, null);
            }

            Array.Sort(recent);
            return (processed, delta, At(recent, 0.50), At(recent, 0.99));
        }

        private static double At(double[] sorted, double quantile) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(quantile * sorted.Length) - 1)];
    }
}
