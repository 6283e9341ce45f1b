using System.CommandLine;
using System.Diagnostics.Metrics;
using System.Globalization;
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
        try
        {
            await using (var runtime = AgentRuntime.Start(settings, new AgentServices(new StaticPodResources(), writer, NullPodEventRecorder.Instance, NodeAllocatable.OfThisMachine(settings.NodeName, settings.MaxPods)), saveState: false))
            {
                metrics.Listen(runtime.Instruments.Meter);
                using var changed = new SemaphoreSlim(0);
                runtime.Pods.Changed += (_, _) => changed.Release();
                await runtime.RunAsync(source, cancellationToken);
                await runtime.Pipeline.WaitForIdleAsync(cancellationToken);

                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(settleTimeout);
                try
                {
                    // Settled: every pod done, running or backing off, and nothing changed for a while.
                    bool changedLately;
                    do
                    {
                        changedLately = await changed.WaitAsync(quiet, deadline.Token);
                    }
                    while (changedLately || !runtime.Pods.Pods().All(Settled));
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    await output.WriteLineAsync($"(some pods had not settled after {settleTimeout.TotalSeconds:0}s; their timelines end where they were)");
                }

                // The timelines end here: what follows is the replay stopping its pods.
                metrics.Collect();
                timelines = writer.Timelines();
                await runtime.StopAsync();
            }

            await PrintAsync(output, timelines, metrics, source);
            return source.Problems.Count == 0 ? 0 : 1;
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>A pod whose status will not change by itself soon: done, running, backing off or stuck waiting with a reason.</summary>
    private static bool Settled(V1Pod pod)
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

    private static string? RecordedNode(string path)
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

    private static async Task PrintAsync(TextWriter output, IReadOnlyDictionary<string, IReadOnlyList<PodReport>> timelines, StageMetrics metrics, WatchStreamReplaySource<V1Pod> source)
    {
        var start = timelines.Values.SelectMany(t => t).Select(r => r.At).DefaultIfEmpty().Min();
        await output.WriteLineAsync($"replayed {source.Played} events, {timelines.Count} pods");
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
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  +{(report.At - start).TotalSeconds,8:0.000}s  {Phase(report),-10} {Describe(report)}"));
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
            await output.WriteLineAsync($"events: {string.Join(", ", metrics.Events.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => $"{e.Key} {e.Value}"))}");
        }
    }

    private static string Phase(PodReport report) => report.Kind switch
    {
        PodReportKind.Deleted => "Deleted",
        _ when report.Runtime is { } runtime => runtime.Phase.ToString(),
        PodReportKind.Failed when Stages.StatusReport.StatusReportStage.ContainerWaitingReasons.Contains(report.Reason ?? string.Empty) => "Pending",
        PodReportKind.Failed => "Failed",
        _ => "Pending",
    };

    private static string Describe(PodReport report)
    {
        var parts = new List<string>();
        if (report.Reason is not null)
        {
            parts.Add($"{report.Reason}: {report.Message}");
        }

        foreach (var container in report.Runtime?.Containers ?? [])
        {
            parts.Add(container.State switch
            {
                Stages.Run.RunningState => $"{container.Name}=Running",
                Stages.Run.WaitingState w => $"{container.Name}=Waiting({w.Reason})",
                Stages.Run.TerminatedState t => string.Create(CultureInfo.InvariantCulture, $"{container.Name}=Terminated({t.Reason}, {t.ExitCode})"),
                _ => container.Name,
            } + (container.RestartCount > 0 ? string.Create(CultureInfo.InvariantCulture, $" restarts={container.RestartCount}") : string.Empty));
        }

        return string.Join("; ", parts);
    }

    /// <summary>The pipeline's counters and stage durations, per stage, gathered with a <see cref="MeterListener"/>.</summary>
    private sealed class StageMetrics : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Dictionary<string, StageFigures> _stages = new(StringComparer.Ordinal);
        private readonly Dictionary<string, long> _events = new(StringComparer.Ordinal);
        private readonly Lock _lock = new();

        public IReadOnlyList<StageFigures> Stages
        {
            get
            {
                lock (_lock)
                {
                    var order = Krustlet.Stages.StageNames.Defaults.Keys.ToList();
                    return [.. _stages.Values.OrderBy(s => order.IndexOf(s.Name) is var i && i < 0 ? int.MaxValue : i)];
                }
            }
        }

        public Dictionary<string, long> Events
        {
            get
            {
                lock (_lock)
                {
                    return new Dictionary<string, long>(_events, StringComparer.Ordinal);
                }
            }
        }

        public void Listen(Meter meter)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter == meter)
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

            lock (_lock)
            {
                if (instrument == "krustlet.pipeline.events" && disposition is not null)
                {
                    _events[disposition] = _events.GetValueOrDefault(disposition) + (long)value;
                    return;
                }

                if (stage is null)
                {
                    return;
                }

                if (!_stages.TryGetValue(stage, out var figures))
                {
                    _stages[stage] = figures = new StageFigures(stage);
                }

                switch (instrument)
                {
                    case "krustlet.stage.processed":
                        figures.Processed += (long)value;
                        break;
                    case "krustlet.stage.failed":
                        figures.Failed += (long)value;
                        break;
                    case "krustlet.stage.cancelled":
                        figures.Cancelled += (long)value;
                        break;
                    case "krustlet.stage.duration":
                        figures.Durations++;
                        figures.TotalMilliseconds += value * 1000;
                        figures.MaxMilliseconds = Math.Max(figures.MaxMilliseconds, value * 1000);
                        break;
                    default:
                        break;
                }
            }
        }
    }

    private sealed class StageFigures(string name)
    {
        public string Name { get; } = name;

        public long Processed { get; set; }

        public long Failed { get; set; }

        public long Cancelled { get; set; }

        public long Durations { get; set; }

        public double TotalMilliseconds { get; set; }

        public double MaxMilliseconds { get; set; }

        public double MeanMilliseconds => Durations == 0 ? 0 : TotalMilliseconds / Durations;
    }
}
