using k8s.Models;

namespace Krustlet.Stages;

/// <summary>Helpers over a pod's containers.</summary>
public static class PodContainers
{
    /// <summary>Init containers in order, then app containers in order.</summary>
    public static IEnumerable<V1Container> All(V1Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        return (pod.Spec?.InitContainers ?? []).Concat(pod.Spec?.Containers ?? []);
    }
}
