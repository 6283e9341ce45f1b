using System.Diagnostics;
using k8s.Models;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Diagnostics;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Stages;

/// <summary>What a pod pipeline left behind when it stopped.</summary>
/// <param name="Graph">What the stage graph left.</param>
/// <param name="UnwrittenReports">Pods whose last status report could not be written in time.</param>
public sealed record PodPipelineShutdown(ShutdownReport Graph, IReadOnlyList<string> UnwrittenReports);

/// <summary>
/// A pod's whole journey: watch event → admission → image pull → compile → volume setup → run →
/// status report. Wraps the generic <see cref="StagePipeline{T}"/> with the pod-specific parts: events
/// keyed by pod UID, pod tags on every span, and the status report stage at the end.
/// </summary>
public sealed class PodPipeline : IAsyncDisposable
{
    public const string NamespaceTag = "k8s.namespace.name";
    public const string PodNameTag = "k8s.pod.name";
    public const string PodUidTag = "k8s.pod.uid";

    private readonly PipelineOptions _options;

    private PodPipeline(StagePipeline<V1Pod> graph, StatusReportStage status, PipelineOptions options, PodStages stages)
    {
        Graph = graph;
        Status = status;
        Stages = stages;
        _options = options;
    }

    public StagePipeline<V1Pod> Graph { get; }

    public StatusReportStage Status { get; }

    /// <summary>The stages the pipeline was built with.</summary>
    public PodStages Stages { get; }

    /// <summary>Builds and starts a pod pipeline of stages that need nothing from it.</summary>
    /// <inheritdoc cref="Start(Func{IPodStageContext, PodStages}, IPodReportWriter, PipelineOptions, PipelineInstruments?, ILoggerFactory?, TimeProvider?)"/>
    public static PodPipeline Start(PodStages stages, IPodReportWriter writer, PipelineOptions options, PipelineInstruments? instruments = null, ILoggerFactory? loggerFactory = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(stages);
        return Start(_ => stages, writer, options, instruments, loggerFactory, time);
    }

    /// <summary>
    /// Builds and starts a pod pipeline. <paramref name="build"/> makes the stages, given the pipeline's
    /// <see cref="IPodStageContext"/>: a stage that re-enters pods, publishes runtime changes or evicts
    /// takes the context in its constructor. Each stage's name must match its slot in <see cref="StageNames"/>.
    /// </summary>
    public static PodPipeline Start(Func<IPodStageContext, PodStages> build, IPodReportWriter writer, PipelineOptions options, PipelineInstruments? instruments = null, ILoggerFactory? loggerFactory = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(build);
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(options);
        var context = new StageContext();
        var stages = build(context) ?? throw new InvalidOperationException("The stage builder returned no stages.");
        var ordered = stages.InOrder;
        for (var i = 0; i < ordered.Count; i++)
        {
            if (ordered[i].Name != StageNames.GraphStages[i])
            {
                throw new ArgumentException($"The {StageNames.GraphStages[i]} slot holds a stage named '{ordered[i].Name}'.", nameof(build));
            }
        }

        loggerFactory ??= NullLoggerFactory.Instance;
        time ??= TimeProvider.System;

        // The status stage reads the run slot's current view of a pod whenever it writes a report.
        var status = new StatusReportStage(writer, options.For(StageNames.StatusReport), stages.Run, instruments, loggerFactory.CreateLogger<StatusReportStage>(), time);
        var builder = new PipelineBuilder<V1Pod>()
            .WithSink(StageNames.StatusReport, status)
            .WithLogger(loggerFactory.CreateLogger<PodPipeline>())
            .WithTimeProvider(time)
            .WithTraceEnrichment(Enrich);
        if (instruments is not null)
        {
            builder.WithInstruments(instruments);
        }

        foreach (var stage in ordered)
        {
            builder.AddStage(stage);
        }

        var graph = builder.Build(options);
        context.Bind(graph, status, stages.Run);
        return new PodPipeline(graph, status, options, stages);
    }

    /// <inheritdoc cref="StagePipeline{T}.RunAsync"/>
    public Task RunAsync(IEventSource<V1Pod> source, CancellationToken cancellationToken = default) => Graph.RunAsync(source, cancellationToken);

    /// <summary>Completes when everything submitted so far has gone through the graph and its report is written.</summary>
    public async Task WaitForIdleAsync(CancellationToken cancellationToken = default)
    {
        await Graph.WaitForIdleAsync(cancellationToken);
        await Status.WaitForIdleAsync(cancellationToken);
    }

    /// <summary>
    /// Stops the graph (draining, then cancelling at the deadline), stops the pods' running containers,
    /// then writes the reports that are left.
    /// </summary>
    public async Task<PodPipelineShutdown> StopAsync()
    {
        var graph = await Graph.StopAsync();
        await Stages.Run.StopAllAsync("the agent is shutting down", _options.ShutdownTimeout);

        var unwritten = await Status.StopAsync(_options.ShutdownTimeout);
        return new PodPipelineShutdown(graph, unwritten);
    }

    /// <summary>Stops, then disposes the graph, the status stage and the stages it was given that are disposable.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await Graph.DisposeAsync();
        await Status.DisposeAsync();
        foreach (var stage in Stages.InOrder.OfType<IDisposable>())
        {
            stage.Dispose();
        }
    }

    private static void Enrich(WorkItem<V1Pod> item, Activity activity)
    {
        activity.SetTag(PodUidTag, item.Key);
        if (item.Value?.Metadata is { } metadata)
        {
            activity.SetTag(NamespaceTag, metadata.Namespace());
            activity.SetTag(PodNameTag, metadata.Name);
        }
    }

    /// <summary>
    /// The context the stages are built with. It is bound to the graph, the status stage and the run
    /// slot before <see cref="Start(Func{IPodStageContext, PodStages}, IPodReportWriter, PipelineOptions, PipelineInstruments?, ILoggerFactory?, TimeProvider?)"/>
    /// returns, so only a stage's constructor could see it unbound (and none may use it there).
    /// </summary>
    private sealed class StageContext : IPodStageContext
    {
        private StagePipeline<V1Pod>? _graph;
        private StatusReportStage? _status;
        private IPodRuntime? _runtime;

        public void Bind(StagePipeline<V1Pod> graph, StatusReportStage status, IPodRuntime runtime)
        {
            _graph = graph;
            _status = status;
            _runtime = runtime;
        }

        public bool Reenter(string uid, string reason) => _graph?.Reenter(uid, reason) ?? false;

        public ValueTask PublishAsync(PodReport report, CancellationToken cancellationToken) =>
            (_status ?? throw new InvalidOperationException("A stage published a report while the pipeline was being built.")).PublishAsync(report, cancellationToken);

        public Task<bool> EvictAsync(string uid, string message) => _runtime?.EvictAsync(uid, message) ?? Task.FromResult(false);

        public PodRuntimeStatus? Current(string uid) => _runtime?.Current(uid);
    }
}
