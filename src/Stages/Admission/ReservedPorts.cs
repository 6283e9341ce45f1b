namespace Krustlet.Stages.Admission;

/// <summary>
/// The TCP ports the agent itself listens on (the kubelet API, the pipeline page), each with the setting
/// that chose it, so admission refuses an HTTP handler port that would collide with one. A setting of 0
/// (any free port) reserves nothing until the listener is bound; the host then reserves the port it got
/// (<see cref="Reserve"/>), before the pod source starts, so no pod is admitted meanwhile. Ports are held
/// whatever the address: a handler listens on the node's IP (loopback in standalone mode) and the
/// agent's listeners on 0.0.0.0 or loopback, so one number is one port here. Thread-safe.
/// </summary>
public sealed class ReservedPorts
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, string> _ports = [];

    /// <summary>Reserves <paramref name="port"/> for <paramref name="setting"/> (e.g. <c>Server:Port</c>); 0 and negative ports (none or any) are ignored.</summary>
    /// <returns>This, for chaining.</returns>
    public ReservedPorts Reserve(int port, string setting)
    {
        ArgumentException.ThrowIfNullOrEmpty(setting);
        if (port is > 0 and <= 65535)
        {
            lock (_lock)
            {
                _ports.TryAdd(port, setting);
            }
        }

        return this;
    }

    /// <summary>The setting that reserved <paramref name="port"/>, or null when the agent does not use it.</summary>
    public string? SettingOf(int port)
    {
        lock (_lock)
        {
            return _ports.GetValueOrDefault(port);
        }
    }

    /// <summary>The reserved ports and their settings, by port.</summary>
    public IReadOnlyList<(int Port, string Setting)> All
    {
        get
        {
            lock (_lock)
            {
                return [.. _ports.OrderBy(p => p.Key).Select(p => (p.Key, p.Value))];
            }
        }
    }
}
