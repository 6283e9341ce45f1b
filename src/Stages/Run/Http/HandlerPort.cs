using k8s.Models;

namespace Krustlet.Stages.Run.Http;

/// <summary>
/// The convention that makes a container an HTTP handler: a port named <c>http</c>. The agent listens on
/// that port for the pod (on the node's IP, every pod's IP; on loopback in standalone mode) and runs a
/// fresh instance of the container's module per request, WAGI-style.
/// </summary>
public static class HandlerPort
{
    /// <summary>The port name that declares a handler.</summary>
    public const string Name = "http";

    /// <summary>The container's handler port, or null when it is not an HTTP handler.</summary>
    public static V1ContainerPort? Of(V1Container container)
    {
        ArgumentNullException.ThrowIfNull(container);
        return container.Ports?.FirstOrDefault(p => string.Equals(p.Name, Name, StringComparison.Ordinal));
    }

    /// <summary>Every handler port of the pod's app containers (init containers never serve), with its container.</summary>
    public static IEnumerable<(V1Container Container, V1ContainerPort Port)> OfPod(V1Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        foreach (var container in pod.Spec?.Containers ?? [])
        {
            if (Of(container) is { } port)
            {
                yield return (container, port);
            }
        }
    }
}
