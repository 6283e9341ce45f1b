using System.Collections.Concurrent;
using k8s.Models;
using Krustlet.Stages.VolumeSetup;

namespace Krustlet.Stages.Tests.Support;

/// <summary>ConfigMaps, secrets and tokens held in memory, as the issue allows for tests of volumes and env.</summary>
internal sealed class InMemoryPodResources : IPodResources
{
    public ConcurrentDictionary<string, V1ConfigMap> ConfigMaps { get; } = new();

    public ConcurrentDictionary<string, V1Secret> Secrets { get; } = new();

    public List<(string Pod, string? Audience, long Expiration)> TokenRequests { get; } = [];

    public void Add(string ns, string name, Dictionary<string, string> data, Dictionary<string, byte[]>? binary = null) =>
        ConfigMaps[$"{ns}/{name}"] = new V1ConfigMap { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns }, Data = data, BinaryData = binary };

    public void AddSecret(string ns, string name, Dictionary<string, string> data) =>
        Secrets[$"{ns}/{name}"] = new V1Secret { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns }, Data = data.ToDictionary(p => p.Key, p => System.Text.Encoding.UTF8.GetBytes(p.Value)) };

    public ValueTask<V1ConfigMap?> GetConfigMapAsync(string @namespace, string name, CancellationToken cancellationToken) =>
        ValueTask.FromResult(ConfigMaps.GetValueOrDefault($"{@namespace}/{name}"));

    public ValueTask<V1Secret?> GetAsync(string @namespace, string name, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Secrets.GetValueOrDefault($"{@namespace}/{name}"));

    public ValueTask<string> RequestTokenAsync(V1Pod pod, string? audience, long expirationSeconds, CancellationToken cancellationToken)
    {
        lock (TokenRequests)
        {
            TokenRequests.Add((pod.Metadata.Name, audience, expirationSeconds));
        }

        return ValueTask.FromResult($"token-for-{pod.Spec.ServiceAccountName ?? "default"}-{audience ?? "api"}");
    }
}
