using System.Globalization;
using k8s.Models;

namespace Krustlet.Stages.Run.Probes;

/// <summary>
/// Where a container's probes go: its pod's IP (the node's IP, every wasm pod shares the node's network;
/// 127.0.0.1 in standalone mode) unless a probe names a host, and its ports, by which a probe may name one.
/// </summary>
internal sealed record ProbeTarget(string PodIp, IReadOnlyList<V1ContainerPort> Ports)
{
    public static ProbeTarget Of(V1Container container, string podIp) => new(podIp, [.. container?.Ports ?? []]);

    /// <summary>
    /// The port a probe means, as the kubelet's ResolveContainerPort: the container port of that name,
    /// else the value as a number (the kubelet's last try: "maybe it was an int stored as string"),
    /// which must be 1–65535. The error is the kubelet's text.
    /// </summary>
    public bool TryResolvePort(IntOrString? port, out int number, out string error)
    {
        var value = port?.Value ?? string.Empty;
        error = string.Empty;
        if (Ports.FirstOrDefault(p => string.Equals(p.Name, value, StringComparison.Ordinal)) is { } named)
        {
            number = named.ContainerPort;
        }
        else if (!int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out number))
        {
            error = $"strconv.Atoi: parsing \"{value}\": invalid syntax";
            return false;
        }

        if (number is > 0 and < 65536)
        {
            return true;
        }

        error = string.Create(CultureInfo.InvariantCulture, $"invalid port number: {number}");
        return false;
    }

    /// <summary>host:port as Go's net.JoinHostPort writes it (an IPv6 address in brackets).</summary>
    public static string JoinHostPort(string host, int port) =>
        host.Contains(':', StringComparison.Ordinal)
            ? string.Create(CultureInfo.InvariantCulture, $"[{host}]:{port}")
            : string.Create(CultureInfo.InvariantCulture, $"{host}:{port}");
}
