using System.Collections.Frozen;
using k8s.Models;
using Krustlet.Stages;
using Krustlet.Stages.VolumeSetup;

namespace Krustlet.Host.Standalone;

/// <summary>
/// The ConfigMaps and Secrets of a static manifest directory, for the volume stage: what
/// <see cref="Krustlet.Stages.Kubernetes.KubernetesPodResources"/> reads from the API server in a
/// cluster. <see cref="StaticPodSource"/> replaces the snapshot after each scan, before it emits the
/// pods of that scan. A missing object reads as null, as a 404 does on the cluster path, so the volume
/// stage reports the same CreateContainerConfigError.
/// </summary>
public sealed class StaticPodResources : IPodResources
{
    private volatile Snapshot _current = new(FrozenDictionary<string, V1ConfigMap>.Empty, FrozenDictionary<string, V1Secret>.Empty);

    /// <summary>Every ConfigMap, keyed "namespace/name".</summary>
    public IReadOnlyDictionary<string, V1ConfigMap> ConfigMaps => _current.ConfigMaps;

    /// <summary>Every Secret, keyed "namespace/name"; <c>stringData</c> is merged into <c>data</c> as the API server does.</summary>
    public IReadOnlyDictionary<string, V1Secret> Secrets => _current.Secrets;

    public ValueTask<V1ConfigMap?> GetConfigMapAsync(string @namespace, string name, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_current.ConfigMaps.GetValueOrDefault($"{@namespace}/{name}"));

    public ValueTask<V1Secret?> GetAsync(string @namespace, string name, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_current.Secrets.GetValueOrDefault($"{@namespace}/{name}"));

    /// <summary>There is no API server to issue tokens: as the kubelet forbids service-account tokens for static pods, the container fails to configure.</summary>
    public ValueTask<string> RequestTokenAsync(V1Pod pod, string? audience, long expirationSeconds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pod);
        throw new PodConfigException($"service account token for {pod.Namespace()}/{pod.Spec?.ServiceAccountName ?? "default"}: static pods cannot use service account tokens (there is no API server in standalone mode)");
    }

    internal void Replace(IEnumerable<V1ConfigMap> configMaps, IEnumerable<V1Secret> secrets) =>
        _current = new(
            configMaps.ToFrozenDictionary(c => $"{c.Metadata.NamespaceProperty}/{c.Metadata.Name}", StringComparer.Ordinal),
            secrets.ToFrozenDictionary(s => $"{s.Metadata.NamespaceProperty}/{s.Metadata.Name}", StringComparer.Ordinal));

    private sealed record Snapshot(FrozenDictionary<string, V1ConfigMap> ConfigMaps, FrozenDictionary<string, V1Secret> Secrets);
}
