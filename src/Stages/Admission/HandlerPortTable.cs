using System.Globalization;
using k8s.Models;
using Krustlet.Stages.Run.Http;

namespace Krustlet.Stages.Admission;

/// <summary>
/// The handler ports (<see cref="HandlerPort"/>) held by the pods admitted on this node, as the kubelet's
/// NodePorts predicate sees host ports: every wasm pod shares the node's IP, so a handler's
/// <c>containerPort</c> is a port of the node. Not thread-safe: <see cref="AdmissionStage"/> uses it under
/// the lock that also guards the pods' resource shares, so checking and holding are one step.
/// </summary>
internal sealed class HandlerPortTable
{
    /// <summary>The kubelet's message for a NodePorts predicate failure; ours goes on to name the port and its holder.</summary>
    public const string PredicateMessage = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports";

    private readonly Dictionary<int, Holder> _byPort = [];
    private readonly Dictionary<string, int[]> _byPod = new(StringComparer.Ordinal);

    private sealed record Holder(string Uid, string Pod, string Field);

    /// <summary>How many ports are held.</summary>
    public int Count => _byPort.Count;

    /// <summary>
    /// Why the pod's handler ports cannot be held (two of its own containers on one port, a port the
    /// agent uses, a port another pod holds), or null when they all can.
    /// </summary>
    public string? Conflict(V1Pod pod, ReservedPorts reserved)
    {
        var mine = new Dictionary<int, string>();
        foreach (var (container, port) in HandlerPort.OfPod(pod))
        {
            var number = port.ContainerPort;
            var field = Field(container);
            if (mine.TryGetValue(number, out var first))
            {
                return Message($"port {number} is requested by both {first} and {field}");
            }

            mine[number] = field;
            if (reserved.SettingOf(number) is { } setting)
            {
                return Message($"port {number} ({field}) is where the node agent itself listens ({setting})");
            }

            if (_byPort.TryGetValue(number, out var holder))
            {
                return Message($"port {number} ({field}) is held by pod {holder.Pod} ({holder.Field})");
            }
        }

        return null;
    }

    /// <summary>Holds the pod's handler ports; call only after <see cref="Conflict"/> returned null, under the same lock.</summary>
    public void Hold(string uid, V1Pod pod)
    {
        var name = $"{pod.Namespace()}/{pod.Metadata?.Name}";
        var ports = new List<int>();
        foreach (var (container, port) in HandlerPort.OfPod(pod))
        {
            _byPort[port.ContainerPort] = new Holder(uid, name, Field(container));
            ports.Add(port.ContainerPort);
        }

        if (ports.Count > 0)
        {
            _byPod[uid] = [.. ports];
        }
    }

    /// <summary>Releases every port the pod holds (its teardown).</summary>
    public void Release(string uid)
    {
        if (_byPod.Remove(uid, out var ports))
        {
            foreach (var port in ports)
            {
                if (_byPort.TryGetValue(port, out var holder) && holder.Uid == uid)
                {
                    _byPort.Remove(port);
                }
            }
        }
    }

    /// <summary>
    /// Why a handler port cannot be served at all (not a port number, not TCP, a hostPort that would map
    /// it elsewhere), as an <c>UnsupportedPodSpec</c> message, or null when every handler port can.
    /// </summary>
    public static string? Unsupported(V1Pod pod)
    {
        foreach (var (container, port) in HandlerPort.OfPod(pod))
        {
            var field = Field(container);
            if (port.ContainerPort is < 1 or > 65535)
            {
                return string.Create(CultureInfo.InvariantCulture, $"{field}.containerPort: {port.ContainerPort} is not a TCP port (1-65535); the node agent listens on it for the HTTP handler");
            }

            if (port.Protocol is { Length: > 0 } protocol && !string.Equals(protocol, "TCP", StringComparison.Ordinal))
            {
                return $"{field}.protocol: an HTTP handler port must be TCP, not {protocol}";
            }

            if (port.HostPort is > 0 and var hostPort && hostPort != port.ContainerPort)
            {
                return string.Create(CultureInfo.InvariantCulture, $"{field}.hostPort: the node agent serves the HTTP handler on the node's port {port.ContainerPort} (its containerPort) and cannot map it to {hostPort}; set hostPort to {port.ContainerPort} or leave it out");
            }
        }

        return null;
    }

    private static string Field(V1Container container) => $"spec.containers[{container.Name}].ports[{HandlerPort.Name}]";

    private static string Message(string detail) => $"{PredicateMessage}: {detail}";
}
