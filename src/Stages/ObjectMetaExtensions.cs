using k8s.Models;

namespace Krustlet.Stages;

/// <summary>
/// Reading Kubernetes object metadata as the API server fills it in. (KubernetesClient's own
/// <c>ModelExtensions.Namespace</c> returns null for an object that names no namespace; inside
/// <c>Krustlet.Stages</c> these overloads are found first, and elsewhere the <see cref="V1Pod"/> one is
/// the better match, while one on <see cref="V1ObjectMeta"/> is ambiguous with KubernetesClient's.)
/// </summary>
public static class ObjectMetaExtensions
{
    /// <summary>The namespace an object without one is in.</summary>
    public const string DefaultNamespace = "default";

    /// <summary>The object's namespace, <c>default</c> when it names none.</summary>
    public static string Namespace(this V1ObjectMeta? metadata) => metadata?.NamespaceProperty ?? DefaultNamespace;

    /// <summary>The pod's namespace, <c>default</c> when it names none.</summary>
    public static string Namespace(this V1Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        return pod.Metadata.Namespace();
    }
}
