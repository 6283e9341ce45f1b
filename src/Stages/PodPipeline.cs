using System.Diagnostics;
using k8s.Models;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Diagnostics;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.StatusReport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Stages;

/// <summary>The five graph stages of a pod pipeline, one per slot, in apply order.</summary>
public sealed record PodStages(
    IStage<V1Pod> Admission,
    IStage<V1Pod> ImagePull,
    IStage<V1Pod> Compile,
    IStage<V1Pod> VolumeSetup,
    IStage<V1Pod> Run)
{
    public IReadOnlyList<IStage<V1Pod>> InOrder => [Admission, ImagePull, Compile, VolumeSetup, Run];
}

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
    private readonly PodStages _stages;
    private readonly Run.RunStage? _run;

    private PodPipeline(StagePipeline<V1Pod> graph, StatusReportStage status, PipelineOptions options, PodStages stages)
    {
        Graph = graph;
        Status = status;
        _options = options;
        _stages = stages;
        _run = stages.Run as Run.RunStage;
    }

    public StagePipeline<V1Pod> Graph { get; }

    public StatusReportStage Status { get; }

    /// <summary>Builds and starts a pod pipeline. Each stage's name must match its slot in <see cref="StageNames"/>.</summary>
    public static PodPipeline Start(PodStages stages, IPodReportWriter writer, PipelineOptions options, PipelineInstruments? instruments = null, ILoggerFactory? loggerFactory = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(stages);
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(options);
        var ordered = stages.InOrder;
        for (var i = 0; i < ordered.Count; i++)
        {
            if (ordered[i].Name != StageNames.GraphStages[i])
            {
                throw new ArgumentException($"The {StageNames.GraphStages[i]} slot holds a stage named '{ordered[i].Name}'.", nameof(stages));
            }
        }

        loggerFactory ??= NullLoggerFactory.Instance;
        time ??= TimeProvider.System;
        var status = new StatusReportStage(writer, options.For(StageNames.StatusReport), instruments, loggerFactory.CreateLogger<StatusReportStage>(), time);

        // The run stage reports container changes outside the graph, and the status stage reads its
        // current view of a pod whenever it writes a report.
        if (stages.Run is Run.RunStage run)
        {
            run.ReportTo(status.PublishAsync);
            status.UseRuntime(run);
        }
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

        // The image pull and volume stages run a pod again when a backoff starts or expires.
        if (stages.ImagePull is ImagePull.ImagePullStage pull)
        {
            pull.UseReentry(graph.Reenter);
        }

        if (stages.VolumeSetup is VolumeSetup.VolumeSetupStage volumes)
        {
            volumes.UseReentry(graph.Reenter);

            // An emptyDir over its sizeLimit evicts the pod: the run stage kills it and reports Evicted.
            if (stages.Run is Run.RunStage runStage)
            {
                volumes.UseEviction(runStage.EvictAsync);
            }
        }

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
        if (_run is not null)
        {
            await _run.StopAllAsync("the agent is shutting down", _options.ShutdownTimeout);
        }

        var unwritten = await Status.StopAsync(_options.ShutdownTimeout);
        return new PodPipelineShutdown(graph, unwritten);
    }

    /// <summary>Stops, then disposes the graph, the status stage and the stages it was given that are disposable.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await Graph.DisposeAsync();
        await Status.DisposeAsync();
        foreach (var stage in _stages.InOrder.OfType<IDisposable>())
        {
            stage.Dispose();
        }
    }

    private static void Enrich(WorkItem<V1Pod> item, Activity activity)
    {
        activity.SetTag(PodUidTag, item.Key);
        if (item.Value?.Metadata is { } metadata)
        {
            activity.SetTag(NamespaceTag, metadata.NamespaceProperty ?? "default");
            activity.SetTag(PodNameTag, metadata.Name);
        }
    }
}
