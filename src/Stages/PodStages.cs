using k8s.Models;
using Krustlet.Pipeline.Engine;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages;

/// <summary>
/// The five graph stages of a pod pipeline, one per slot, in apply order. The run slot is typed: the
/// pipeline reads the pods' runtime status from it, evicts through it and stops it at shutdown.
/// </summary>
public sealed record PodStages(
    IStage<V1Pod> Admission,
    IStage<V1Pod> ImagePull,
    IStage<V1Pod> Compile,
    IStage<V1Pod> VolumeSetup,
    IPodRuntime Run)
{
    public IReadOnlyList<IStage<V1Pod>> InOrder => [Admission, ImagePull, Compile, VolumeSetup, Run];
}

/// <summary>The run slot: the stage that owns the pods' running containers.</summary>
public interface IPodRuntime : IStage<V1Pod>, IPodRuntimeSource
{
    /// <summary>Fails a running pod with reason Evicted and kills its containers; false when it does not run the pod.</summary>
    Task<bool> EvictAsync(string uid, string message);

    /// <summary>
    /// Stops every pod's containers because the agent is stopping, waiting up to <paramref name="grace"/>
    /// for each; the pods keep their phase and saved state so a restarted agent re-adopts them.
    /// </summary>
    Task StopAllAsync(string reason, TimeSpan grace);
}
