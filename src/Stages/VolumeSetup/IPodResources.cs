using k8s.Models;
using Krustlet.Stages.ImagePull;

namespace Krustlet.Stages.VolumeSetup;

/// <summary>
/// What a pod's volumes and environment read from the cluster: configMaps, secrets and service-account
/// tokens. The Kubernetes integration implements it against the API; tests use an in-memory one.
/// </summary>
public interface IPodResources : IPodSecretReader
{
    ValueTask<V1ConfigMap?> GetConfigMapAsync(string @namespace, string name, CancellationToken cancellationToken);

    /// <summary>A token for the pod's service account (the TokenRequest API), bound to the pod.</summary>
    ValueTask<string> RequestTokenAsync(V1Pod pod, string? audience, long expirationSeconds, CancellationToken cancellationToken);
}

/// <summary>A configuration the pod refers to is missing or wrong: the container waits with CreateContainerConfigError.</summary>
public sealed class PodConfigException : Exception
{

    public PodConfigException(string message)
        : base(message)
    {
    }

    public PodConfigException()
    {
    }

    public PodConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
