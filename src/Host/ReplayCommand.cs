using System.Collections.Concurrent;
using System.CommandLine;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using k8s.Models;
using Krustlet.Host.Agent;
using Krustlet.Host.Configuration;
using Krustlet.Host.Standalone;
using Krustlet.Pipeline.Diagnostics;
using Krustlet.Pipeline.Replay;
using Krustlet.Stages;
using Krustlet.Stages.Admission;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.PodEvents;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Host;

/// <summary>
/// <c>krustlet replay &lt;stream.ndjson&gt;</c>: plays a recorded pod watch stream through the real pipeline
/// (every stage, real Wasmtime) with an in-memory status writer, waits for the pods to settle, then
/// prints each pod's status timeline and the stage metrics.
/// </summary>
internal static class ReplayCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var flags = new SettingsFlags();
        var stream = new Argument<FileInfo>("stream") { Description = "The recorded stream (.ndjson, as `krustlet record` writes)." };
        var pace = new Option<ReplayPace>("--pace") { Description = "AsFastAsPossible, or Recorded (each event at its offsetSeconds).", DefaultValueFactory = _ => ReplayPace.AsFastAsPossible };
        var images = new Option<string[]>("--images") { Description = "OCI image layout directories to import into the image store first; repeatable." };
        var quiet = new Option<TimeSpan>("--settle") { Description = "After the stream ends, pods are settled once every pod is done, running or backing off and no status changed for this long.", DefaultValueFactory = _ => TimeSpan.FromSeconds(2) };
        var settle = new Option<TimeSpan>("--settle-timeout") { Description = "The longest wait for the pods to settle.", DefaultValueFactory = _ => TimeSpan.FromSeconds(60) };
        var command = new Command("replay", "Replay a recorded pod stream through the real pipeline and print each pod's status timeline and the stage metrics.") { stream, pace, images, quiet, settle };
        flags.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            if (await flags.ReadOrReportAsync(parse, error) is not { } settings)
            {
                return SettingsFlags.InvalidSettingsExitCode;
            }

            var file = parse.GetValue(stream)!;
            if (!file.Exists)
            {
                await error.WriteLineAsync($"error: the stream {file.FullName} does not exist.");
                return 2;
            }

            // Unless a node name was set, the pods are admitted as on the node they were recorded on.
            if (string.Equals(settings.NodeName, Environment.MachineName, StringComparison.OrdinalIgnoreCase) && RecordedNode(file.FullName) is { } recorded)
            {
                settings = settings with { NodeName = recorded };
            }

            try
            {
                return await RunAsync(settings, file.FullName, parse.GetValue(pace), parse.GetValue(images) ?? [], parse.GetValue(quiet), parse.GetValue(settle), output, ct);
            }
            catch (Exception ex) when (ex is IOException or OciLayoutException)
            {
                await error.WriteLineAsync($"error: {ex.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary>Replays the stream; 0 when every line played, 1 when some were skipped (they are listed).</summary>
    public static async Task<int> RunAsync(AgentSettings settings, string path, ReplayPace pace, IReadOnlyList<string> layouts, TimeSpan quiet, TimeSpan settleTimeout, TextWriter output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(output);
        foreach (var layout in layouts)
        {
            await new OciLayoutImporter(new ContentStore(settings.ImagesDirectory), settings.Registries).ImportAsync(layout, cancellationToken);
        }

        // Images and compiled modules come from (and stay in) the data directory; the replayed pods'
        // directories, logs and state live in a scratch directory removed afterwards.
        var scratch = Directory.CreateTempSubdirectory("krustlet-replay-").FullName;
        settings = settings with
        {
            PodsDirectory = Path.Combine(scratch, "pods"),
            LogsDirectory = Path.Combine(scratch, "logs"),
            StateDirectory = Path.Combine(scratch, "state"),
        };
        var writer = new InMemoryPodReportWriter();
        using var metrics = new StageMetrics();
        var source = WatchStreamReplaySource<V1Pod>.FromFile(path, PodWatchDecoder.Instance, pace);
        IReadOnlyDictionary<string, IReadOnlyList<PodReport>> timelines;
        TimeSpan played;
        var settled = true;
        PodPipelineShutdown shutdown;
        try
        {
            await using (var runtime = AgentRuntime.Start(settings, new AgentServices(new StaticPodResources(), writer, NullPodEventRecorder.Instance, NodeAllocatable.OfThisMachine(settings.NodeName, settings.MaxPods)), saveState: false))
            {
                metrics.Listen(runtime.Instruments.Meter);
                var changes = new StrongBox<long>();
                runtime.Pods.Changed += (_, _) => Interlocked.Increment(ref changes.Value);
                var started = Stopwatch.GetTimestamp();
                await runtime.RunAsync(source, cancellationToken);
                await runtime.Pipeline.WaitForIdleAsync(cancellationToken);
                played = Stopwatch.GetElapsedTime(started);

                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(settleTimeout);
                try
                {
                    // Settled: every pod done, running or backing off, and nothing changed for a while.
                    bool changedLately;
                    do
                    {
                        var before = Interlocked.Read(ref changes.Value);
                        await Task.Delay(quiet, deadline.Token);
                        changedLately = Interlocked.Read(ref changes.Value) != before;
                    }
                    while (changedLately || !runtime.Pods.Pods().All(Settled));
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    settled = false;
                    await output.WriteLineAsync($"(some pods had not settled after {settleTimeout.TotalSeconds:0}s; their timelines end where they were)");
                }

                // The timelines end here: what follows is the replay stopping its pods.
                metrics.Collect();
                timelines = writer.Timelines();
                shutdown = await runtime.StopAsync();
            }

            await PrintAsync(output, timelines, metrics, source, played);
            await PrintLeftAsync(output, shutdown, settled, settleTimeout);
            return source.Problems.Count == 0 ? 0 : 1;
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>A pod whose status will not change by itself soon: done, running, backing off or stuck waiting with a reason (tune ends a trial on it too).</summary>
    internal static bool Settled(V1Pod pod)
    {
        var status = pod.Status;
        if (status?.Phase is "Succeeded" or "Failed")
        {
            return true;
        }

        var containers = status?.ContainerStatuses ?? [];
        if (containers.Count == 0)
        {
            return false;
        }

        return status!.Phase == "Running"
            ? containers.All(c => c.State?.Running is not null || c.State?.Terminated is not null || c.State?.Waiting?.Reason == KubeletReasons.CrashLoopBackOff)
            : containers.Any(c => c.State?.Waiting?.Reason is { } reason && reason is not KubeletReasons.ContainerCreating and not KubeletReasons.PodInitializing);
    }

    /// <summary>The node the stream's pods were recorded on: the first <c>spec.nodeName</c> in it.</summary>
    internal static string? RecordedNode(string path)
    {
        using var reader = new StreamReader(path);
        for (var line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            try
            {
                if (JsonNode.Parse(line)?["object"]?["spec"]?["nodeName"]?.GetValue<string>() is { Length: > 0 } node)
                {
                    return node;
                }
            }
            catch (System.Text.Json.JsonException)
            {
                // the replay source reports bad lines
            }
        }

        return null;
    }

    private static async Task PrintAsync(TextWriter output, IReadOnlyDictionary<string, IReadOnlyList<PodReport>> timelines, StageMetrics metrics, WatchStreamReplaySource<V1Pod> source, TimeSpan played)
    {
        var start = timelines.Values.SelectMany(t => t).Select(r => r.At).DefaultIfEmpty().Min();
        await output.WriteLineAsync($"replayed {source.Played} events, {timelines.Count} pods");
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"through the pipeline in {played.TotalSeconds:0.000}s ({source.Played / Math.Max(played.TotalSeconds, 1e-6):#,0} events/s, first event read to last report written)"));
        foreach (var problem in source.Problems)
        {
            await output.WriteLineAsync($"skipped {problem}");
        }

        foreach (var timeline in timelines.Values.OrderBy(t => t[0].At))
        {
            await output.WriteLineAsync();
            await output.WriteLineAsync($"{timeline[0].Namespace}/{timeline[0].Name} ({timeline[0].Uid})");
            foreach (var report in timeline)
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  +{(report.At - start).TotalSeconds,8:0.000}s  {PodTimelineText.Phase(report),-10} {PodTimelineText.Describe(report)}"));
            }
        }

        await output.WriteLineAsync();
        await output.WriteLineAsync("stage           processed   failed  cancelled   mean ms    max ms");
        foreach (var stage in metrics.Stages)
        {
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{stage.Name,-14} {stage.Processed,10} {stage.Failed,8} {stage.Cancelled,10} {stage.MeanMilliseconds,9:0.000} {stage.MaxMilliseconds,9:0.000}"));
        }

        if (metrics.Events.Count > 0)
        {
            // The gate's dispositions, in words: "pending" is an event that waited, not one left over.
            var events = metrics.Events;
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"events: {events.GetValueOrDefault("dispatched")} started at once, {events.GetValueOrDefault("pending")} waited behind their pod's work item and then ran, {events.GetValueOrDefault("coalesced")} coalesced into a waiting one (a newer spec for the same pod), {events.GetValueOrDefault("dropped")} dropped (nothing new to do)"));
        }
    }

    /// <summary>What the replay left undone when it stopped its pods, and why; "nothing" in a clean run.</summary>
    private static async Task PrintLeftAsync(TextWriter output, PodPipelineShutdown shutdown, bool settled, TimeSpan settleTimeout)
    {
        var graph = shutdown.Graph;
        var why = settled
            ? "the replay stopped its pods"
            : string.Create(CultureInfo.InvariantCulture, $"the pods had not settled within --settle-timeout ({settleTimeout.TotalSeconds:0}s)");
        var left = new List<string>();
        if (graph.AbandonedKeys.Count > 0)
        {
            left.Add($"{graph.AbandonedKeys.Count} pods had events waiting that never ran ({why}): {Sample(graph.AbandonedKeys)}");
        }

        if (graph.CancelledKeys.Count > 0)
        {
            left.Add($"{graph.CancelledKeys.Count} pods' work was cancelled at the shutdown deadline ({why}): {Sample(graph.CancelledKeys)}");
        }

        if (graph.StuckKeys.Count > 0)
        {
            left.Add($"{graph.StuckKeys.Count} pods' work ignored cancellation: {Sample(graph.StuckKeys)}");
        }

        if (shutdown.UnwrittenReports.Count > 0)
        {
            left.Add($"{shutdown.UnwrittenReports.Count} pods' last reports were not written in time: {Sample(shutdown.UnwrittenReports)}");
        }

        await output.WriteLineAsync(left.Count == 0
            ? "left at the end: nothing (every event ran or was coalesced into one that ran, and every report was written)"
            : "left at the end: " + string.Join("; ", left));
    }

    private static string Sample(IReadOnlyList<string> keys) =>
        string.Join(", ", keys.Take(5)) + (keys.Count > 5 ? $" and {keys.Count - 5} more" : string.Empty);

    /// <summary>
    /// The pipeline's counters and stage durations, per stage, gathered with a <see cref="MeterListener"/>.
    /// Only the instruments printed are listened to, and each stage's figures have a lock of their own:
    /// the callbacks run on the pipeline's hot path, several per work item.
    /// </summary>
    private sealed class StageMetrics : IDisposable
    {
        private static readonly HashSet<string> Listened = new(StringComparer.Ordinal)
        {
            "krustlet.stage.processed", "krustlet.stage.failed", "krustlet.stage.cancelled", "krustlet.stage.duration", "krustlet.pipeline.events",
        };

        private readonly MeterListener _listener = new();
        private readonly ConcurrentDictionary<string, StageFigures> _stages = new(StringComparer.Ordinal);
        private readonly ConcurrentDictionary<string, StrongBox<long>> _events = new(StringComparer.Ordinal);

        public IReadOnlyList<StageFigures> Stages
        {
            get
            {
                var order = Krustlet.Stages.StageNames.Defaults.Keys.ToList();
                return [.. _stages.Values.OrderBy(s => order.IndexOf(s.Name) is var i && i < 0 ? int.MaxValue : i)];
            }
        }

        public Dictionary<string, long> Events => _events.ToDictionary(e => e.Key, e => Interlocked.Read(ref e.Value.Value), StringComparer.Ordinal);

        public void Listen(Meter meter)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter == meter && Listened.Contains(instrument.Name))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument.Name, value, tags));
            _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument.Name, value, tags));
            _listener.Start();
        }

        public void Collect() => _listener.RecordObservableInstruments();

        public void Dispose() => _listener.Dispose();

        private void Record(string instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? stage = null;
            string? disposition = null;
            foreach (var tag in tags)
            {
                if (tag.Key == KrustletTelemetry.StageTag)
                {
                    stage = tag.Value as string;
                }
                else if (tag.Key == "disposition")
                {
                    disposition = tag.Value as string;
                }
            }

            if (instrument == "krustlet.pipeline.events" && disposition is not null)
            {
                Interlocked.Add(ref _events.GetOrAdd(disposition, _ => new StrongBox<long>()).Value, (long)value);
                return;
            }

            if (stage is not null)
            {
                _stages.GetOrAdd(stage, name => new StageFigures(name)).Record(instrument, value);
            }
        }
    }

    private sealed class StageFigures(string name)
    {
        private readonly Lock _lock = new();
        private long _processed;
        private long _failed;
        private long _cancelled;
        private long _durations;
        private double _totalMilliseconds;
        private double _maxMilliseconds;

        public string Name { get; } = name;

        public long Processed => Interlocked.Read(ref _processed);

        public long Failed => Interlocked.Read(ref _failed);

        public long Cancelled => Interlocked.Read(ref _cancelled);

        public double MaxMilliseconds
        {
            get
            {
                lock (_lock)
                {
                    return _maxMilliseconds;
                }
            }
        }

        public double MeanMilliseconds
        {
            get
            {
                lock (_lock)
                {
                    return _durations == 0 ? 0 : _totalMilliseconds / _durations;
                }
            }
        }

        public void Record(string instrument, double value)
        {
            switch (instrument)
            {
                case "krustlet.stage.processed":
                    Interlocked.Add(ref _processed, (long)value);
                    break;
                case "krustlet.stage.failed":
                    Interlocked.Add(ref _failed, (long)value);
                    break;
                case "krustlet.stage.cancelled":
                    Interlocked.Add(ref _cancelled, (long)value);
                    break;
                case "krustlet.stage.duration":
                    lock (_lock)
                    {
                        _durations++;
                        _totalMilliseconds += value * 1000;
                        _maxMilliseconds = Math.Max(_maxMilliseconds, value * 1000);
                    }

                    break;
                default:
                    break;
            }
        }
    }
}
