using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages;

/// <summary>
/// What a stage may ask of the pod pipeline it is part of. <see cref="PodPipeline.Start(Func{IPodStageContext, PodStages}, IPodReportWriter, Pipeline.Configuration.PipelineOptions, Pipeline.Diagnostics.PipelineInstruments?, Microsoft.Extensions.Logging.ILoggerFactory?, TimeProvider?)"/>
/// hands one to the function that builds the stages, so a stage that needs the pipeline takes it in
/// its constructor and can never exist without it, whatever slot it is put in.
/// </summary>
public interface IPodStageContext : IPodRuntimeSource
{
    /// <summary>
    /// Runs the pod through the graph again once its current work is done (a backoff expired, a missing
    /// configMap may have appeared). False when nothing was scheduled: the pod is unknown or deleted, an
    /// update is already waiting, or the pipeline is stopping.
    /// </summary>
    bool Reenter(string uid, string reason);

    /// <summary>Hands a change that happened outside the graph (a container exited) to the status stage.</summary>
    ValueTask PublishAsync(PodReport report, CancellationToken cancellationToken);

    /// <summary>Evicts a running pod through the run slot; false when the run slot does not run it.</summary>
    Task<bool> EvictAsync(string uid, string message);
}
