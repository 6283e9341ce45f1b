using k8s.Models;

namespace Krustlet.Host.KubeletApi;

/// <summary>What the kubelet API serves about pods: the agent implements it over its live state.</summary>
public interface IKubeletPods
{
    /// <summary>
    /// The pods on this node, each a full <see cref="V1Pod"/>: metadata, spec, and its current status with
    /// containerStatuses/initContainerStatuses, restartCount and state. Called on every request, from any
    /// thread; the list returned must not change afterwards.
    /// </summary>
    IReadOnlyList<V1Pod> Pods();
}
