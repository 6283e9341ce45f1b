using k8s.Models;
using Krustlet.Pipeline.Engine;
using Krustlet.Stages.ImagePull;

namespace Krustlet.Stages.Compile;

/// <summary>The compile stage's output: every container's compiled module or component, by container name.</summary>
public sealed record CompiledModules(IReadOnlyDictionary<string, CompiledArtifact> ByContainer);

/// <summary>
/// Turns each container's pulled module bytes into an artifact the shared engine can instantiate,
/// through the <see cref="CompileCache"/>. Reads <see cref="PulledImages"/>; gives <see cref="CompiledModules"/>.
/// A module that does not compile fails the pod with reason <c>CreateContainerError</c> and the
/// validator's message.
/// </summary>
public sealed class CompileStage(CompileCache cache) : IStage<V1Pod>
{

    public string Name => StageNames.Compile;

    public async ValueTask<StageOutcome> ApplyAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        var pulled = item.Get<PulledImages>();
        var compiled = new Dictionary<string, CompiledArtifact>(StringComparer.Ordinal);
        foreach (var container in PodContainers.All(item.Value!))
        {
            if (pulled is null || !pulled.ByContainer.TryGetValue(container.Name, out var image))
            {
                return StageOutcome.Fail(KubeletReasons.CreateContainerError, $"container {container.Name}: no pulled image");
            }

            try
            {
                compiled[container.Name] = await cache.GetAsync(image.Digest, image.ModulePath, cancellationToken);
            }
            catch (CompileException ex)
            {
                return StageOutcome.Fail(KubeletReasons.CreateContainerError, $"container {container.Name}: image {image.Image}: {ex.Message}");
            }
        }

        item.Set(new CompiledModules(compiled));
        return StageOutcome.Continue;
    }

    /// <summary>Compiled artifacts are shared by digest and outlive the pod: nothing to release.</summary>
    public ValueTask<StageOutcome> TeardownAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken) =>
        ValueTask.FromResult(StageOutcome.Continue);
}
