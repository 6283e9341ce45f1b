using System.Diagnostics;
using System.Globalization;
using k8s.Models;
using Krustlet.Host.Agent;
using Krustlet.Host.Configuration;
using Krustlet.Host.PipelinePage;
using Krustlet.Host.Standalone;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Replay;
using Krustlet.Stages;
using Krustlet.Stages.Admission;
using Krustlet.Stages.PodEvents;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Host.Tuning;

/// <summary>One stage's figures over a trial, from the pipeline's own instruments sampled while it ran.</summary>
/// <param name="Name">The stage.</param>
/// <param name="Options">Its parallelism and capacity in the trial.</param>
/// <param name="MeanQueue">Pods waiting for one of its slots, averaged over the samples.</param>
/// <param name="MeanInFlight">Pods in it, averaged likewise.</param>
/// <param name="PeakHeld">The most pods it held at once, waiting and in progress (at its capacity, senders waited).</param>
/// <param name="BottleneckShare">The fraction of samples in which it was the bottleneck as the pipeline page names it (<see cref="PipelineMonitor.Bottleneck"/>).</param>
/// <param name="P50Milliseconds">Median time in the stage.</param>
/// <param name="P99Milliseconds">99th percentile time in the stage.</param>
internal sealed record StageFigures(string Name, StageOptions Options, double MeanQueue, double MeanInFlight, long PeakHeld, double BottleneckShare, double? P50Milliseconds, double? P99Milliseconds)
{
    /// <summary>How busy its slots were on average.</summary>
    public double Busy => Options.Parallelism == 0 ? 0 : MeanInFlight / Options.Parallelism;

    /// <summary>Whether it held as many pods as its capacity at some point.</summary>
    public bool Filled => PeakHeld >= Options.Capacity;
}

/// <summary>What one trial measured.</summary>
/// <param name="Options">The stage settings tried.</param>
/// <param name="Change">How they differ from the trial they were derived from ("the starting settings" for the first).</param>
/// <param name="Finished">Whether every pod settled before the trial's deadline.</param>
/// <param name="Wall">Replay start to the last pod settled (or the deadline).</param>
/// <param name="RunningMilliseconds">Per pod that got there: its event to the first status with every container started.</param>
/// <param name="Pods">The pods played.</param>
/// <param name="Completed">Pods that ran to Succeeded or Failed.</param>
/// <param name="CompletionsPerSecond">Completed pods per second, replay start to the last completion; null when none completed.</param>
/// <param name="PeakRssBytes">The agent process's peak resident memory during the trial.</param>
/// <param name="Cpu">CPU time the process used during the trial.</param>
/// <param name="Stages">Each stage's figures.</param>
internal sealed record TrialResult(PipelineOptions Options, string Change, bool Finished, TimeSpan Wall, IReadOnlyList<double> RunningMilliseconds, int Pods, int Completed, double? CompletionsPerSecond, long PeakRssBytes, TimeSpan Cpu, IReadOnlyList<StageFigures> Stages)
{
    /// <summary>The starting settings run a second time, to measure how much the same setting varies between trials.</summary>
    public bool IsNoiseCheck { get; init; }

    public double? RunningP50 => Quantile(0.50);

    public double? RunningP99 => Quantile(0.99);

    /// <summary>The stage that was the bottleneck most often; failing that, the one whose slots were busiest.</summary>
    public StageFigures Bottleneck =>
        Stages.Where(s => s.BottleneckShare > 0).MaxBy(s => s.BottleneckShare) ?? Stages.MaxBy(s => s.Busy)!;

    /// <summary>A trial that finished and got every pod running.</summary>
    public bool Usable => Finished && RunningMilliseconds.Count > 0;

    private double? Quantile(double q)
    {
        if (RunningMilliseconds.Count == 0)
        {
            return null;
        }

        var sorted = RunningMilliseconds.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, Math.Max(0, (int)Math.Ceiling(q * sorted.Length) - 1))];
    }
}

/// <summary>How far a trial has got, reported about once a second.</summary>
internal sealed record TrialProgress(TimeSpan Elapsed, int Running, int Completed, int Pods, string? Bottleneck);

/// <summary>
/// One trial of <c>krustlet tune</c>: the real agent (<see cref="AgentRuntime"/>, every stage, real
/// Wasmtime) built with the stage settings tried, over a scratch directory for pods, logs, state and
/// compiled modules (each trial compiles for real; images come from the data directory's store), the
/// stream replayed into it, the stages sampled with the pipeline page's <see cref="PipelineMonitor"/>
/// until every pod settled, then the pods stopped.
/// </summary>
internal static class TuneTrial
{
    /// <summary>How often the stages' queue depth and in-flight counts are read.</summary>
    public static readonly TimeSpan SampleInterval = TimeSpan.FromMilliseconds(20);

    /// <summary>The tmpfs trials keep their directories on when the machine has one.</summary>
    public const string Tmpfs = "/dev/shm";

    private static readonly IReadOnlyList<string> AllStages = [.. StageNames.GraphStages, StageNames.StatusReport];

    /// <param name="settings">The agent's settings; the trial's directories replace its pod, log, state and compile-cache ones.</param>
    /// <param name="options">The stage settings tried.</param>
    /// <param name="change">How they differ from the trial they were derived from.</param>
    /// <param name="stream">What is replayed.</param>
    /// <param name="deadline">How long the trial may take before it is cut short.</param>
    /// <param name="wrapStages">Wraps the trial's stages (tests make one stage expensive).</param>
    /// <param name="progress">Called about once a second.</param>
    /// <param name="scratchRoot">
    /// Where the trial's directories go. On a tmpfs (<c>/dev/shm</c>) they are deleted when the trial ends;
    /// elsewhere they are left for the caller to delete once the whole search is over: deleting thousands
    /// of pod directories between trials makes the next trial's <c>mkdir</c>s slower on ext4 (it passes
    /// over inodes freed in the last minutes, <c>recently_deleted</c>), so each trial would run slower than
    /// the one before whatever its settings.
    /// </param>
    /// <param name="cancellationToken">Stops the trial and the search.</param>
    public static async Task<TrialResult> RunAsync(AgentSettings settings, PipelineOptions options, string change, TuneStream stream, TimeSpan deadline, Func<PodStages, PodStages>? wrapStages, Action<TrialProgress> progress, string scratchRoot, CancellationToken cancellationToken)
    {
        var scratch = Directory.CreateDirectory(Path.Combine(scratchRoot, "trial-" + Guid.NewGuid().ToString("N")[..12])).FullName;
        settings = settings with
        {
            Pipeline = options,
            PodsDirectory = Path.Combine(scratch, "pods"),
            LogsDirectory = Path.Combine(scratch, "logs"),
            StateDirectory = Path.Combine(scratch, "state"),
            CompileCacheDirectory = Path.Combine(scratch, "compile-cache"),

            // A trial measures the pipeline: it neither refuses pods under the machine's pressure nor
            // collects the images of the store it plays from.
            Pressure = new Stages.Pressure.NodePressureOptions { Thresholds = [] },
            ImageGcThresholds = (100, 0),
        };

        // What the previous trial left for the collector is not this trial's memory.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var memory = new PeakMemory();
        var writer = new InMemoryPodReportWriter();
        await using var runtime = AgentRuntime.Start(settings, new AgentServices(new StaticPodResources(), writer, NullPodEventRecorder.Instance, NodeAllocatable.OfThisMachine(settings.NodeName, settings.MaxPods)), saveState: false, wrapStages: wrapStages);
        using var monitor = new PipelineMonitor(runtime.Instruments.Meter, AllStages, options);
        var samples = new Samples(AllStages);
        var source = WatchStreamReplaySource<V1Pod>.FromFile(stream.Path, PodWatchDecoder.Instance, stream.Pace);
        using var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        memory.Reset();
        var startedAt = TimeProvider.System.GetUtcNow();
        var started = Stopwatch.GetTimestamp();
        using var cut = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cut.CancelAfter(deadline);
        var feeding = runtime.RunAsync(source, cut.Token);
        var finished = false;
        var lastReport = started;
        try
        {
            for (var tick = 0; !finished; tick++)
            {
                await Task.Delay(SampleInterval, cut.Token);
                samples.Add(monitor.Snapshot());
                memory.Sample();
                if (tick % 5 == 0)
                {
                    var pods = runtime.Pods.Pods();
                    finished = feeding.IsCompleted && runtime.Pipeline.Graph.WaitForIdleAsync(CancellationToken.None).IsCompleted && pods.Count > 0 && pods.All(ReplayCommand.Settled);
                    if (Stopwatch.GetElapsedTime(lastReport) >= TimeSpan.FromSeconds(1))
                    {
                        lastReport = Stopwatch.GetTimestamp();
                        progress(new TrialProgress(Stopwatch.GetElapsedTime(started), pods.Count(p => p.Status?.Phase is "Running" or "Succeeded" or "Failed"), pods.Count(p => p.Status?.Phase is "Succeeded" or "Failed"), stream.Pods.Count, samples.Bottleneck()));
                    }
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The trial's deadline: what it measured so far is kept, marked unfinished.
        }

        var wall = Stopwatch.GetElapsedTime(started);
        process.Refresh();
        var cpuUsed = process.TotalProcessorTime - cpu;
        var peak = memory.Peak();
        await feeding;
        var timelines = writer.Timelines();
        await runtime.StopAsync();
        if (scratch.StartsWith(Tmpfs + "/", StringComparison.Ordinal))
        {
            Directory.Delete(scratch, recursive: true); // on a tmpfs deleting costs the next trial nothing
        }

        return Measure(options, change, finished, wall, stream, startedAt, timelines, peak, cpuUsed, samples);
    }

    private static TrialResult Measure(PipelineOptions options, string change, bool finished, TimeSpan wall, TuneStream stream, DateTimeOffset startedAt, IReadOnlyDictionary<string, IReadOnlyList<PodReport>> timelines, long peakRss, TimeSpan cpu, Samples samples)
    {
        var running = new List<double>();
        var completed = 0;
        var lastCompletion = TimeSpan.Zero;
        foreach (var uid in stream.Pods)
        {
            if (!timelines.TryGetValue(uid, out var timeline))
            {
                continue;
            }

            var eventAt = startedAt + stream.EventOffsets.GetValueOrDefault(uid);
            if (timeline.FirstOrDefault(Started) is { } first)
            {
                running.Add(Math.Max(0, (first.At - eventAt).TotalMilliseconds));
            }

            if (timeline.FirstOrDefault(r => r.Runtime?.Phase is PodPhase.Succeeded or PodPhase.Failed) is { } done)
            {
                completed++;
                lastCompletion = TimeSpan.FromTicks(Math.Max(lastCompletion.Ticks, (done.At - startedAt).Ticks));
            }
        }

        double? perSecond = completed == 0 ? null : completed / Math.Max(lastCompletion.TotalSeconds, 1e-3);
        return new TrialResult(options, change, finished, wall, running, stream.Pods.Count, completed, perSecond, peakRss, cpu, samples.Figures(options));
    }

    /// <summary>The first status in which every container has started: running, or already terminated after running.</summary>
    private static bool Started(PodReport report) =>
        report.Runtime is { Containers.Count: > 0 } runtime && runtime.Containers.All(c => c.State is RunningState || (c.State is TerminatedState t && t.Reason is not KubeletReasons.StartError));

    /// <summary>The stages' samples over a trial.</summary>
    private sealed class Samples(IReadOnlyList<string> stages)
    {
        private readonly Dictionary<string, (double Queue, double InFlight, long Peak, int Bottleneck, double? P50, double? P99)> _sums = stages.ToDictionary(s => s, _ => (0.0, 0.0, 0L, 0, (double?)null, (double?)null), StringComparer.Ordinal);
        private int _count;

        public void Add(IReadOnlyList<StageView> snapshot)
        {
            _count++;
            var bottleneck = PipelineMonitor.Bottleneck(snapshot);
            foreach (var stage in snapshot)
            {
                var sum = _sums[stage.Name];
                _sums[stage.Name] = (sum.Queue + stage.QueueDepth, sum.InFlight + stage.InFlight, Math.Max(sum.Peak, stage.QueueDepth + stage.InFlight), sum.Bottleneck + (stage.Name == bottleneck ? 1 : 0), stage.P50Milliseconds ?? sum.P50, stage.P99Milliseconds ?? sum.P99);
            }
        }

        /// <summary>The stage named the bottleneck most often so far, or null.</summary>
        public string? Bottleneck() => _sums.Where(s => s.Value.Bottleneck > 0).OrderByDescending(s => s.Value.Bottleneck).Select(s => s.Key).FirstOrDefault();

        public IReadOnlyList<StageFigures> Figures(PipelineOptions options)
        {
            var n = Math.Max(_count, 1);
            return [.. _sums.Select(s => new StageFigures(s.Key, options.For(s.Key), s.Value.Queue / n, s.Value.InFlight / n, s.Value.Peak, (double)s.Value.Bottleneck / n, s.Value.P50, s.Value.P99))];
        }
    }

    /// <summary>
    /// The process's peak resident memory over a trial: the kernel's high-water mark (<c>VmHWM</c>), reset
    /// at the start through <c>/proc/self/clear_refs</c>; where that cannot be reset, the highest
    /// <c>VmRSS</c> sampled.
    /// </summary>
    private sealed class PeakMemory
    {
        private bool _reset;
        private long _sampled;

        public void Reset()
        {
            try
            {
                File.WriteAllText("/proc/self/clear_refs", "5");
                _reset = true;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                _reset = false;
            }

            _sampled = Read("VmRSS:");
        }

        public void Sample() => _sampled = Math.Max(_sampled, Read("VmRSS:"));

        public long Peak() => Math.Max(_sampled, _reset ? Read("VmHWM:") : 0);

        private static long Read(string field)
        {
            try
            {
                foreach (var line in File.ReadLines("/proc/self/status"))
                {
                    if (line.StartsWith(field, StringComparison.Ordinal))
                    {
                        return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
            {
                // not Linux, or no procfs: no figure
            }

            return 0;
        }
    }
}
