using k8s.Models;

namespace Krustlet.Stages.Run.Probes;

/// <summary>The three probes of a container, in the order the kubelet gates them.</summary>
public enum ProbeKind
{
    /// <summary>Gates the other two: until it succeeds the container is not <c>started</c>.</summary>
    Startup,

    /// <summary>A failure at its threshold kills the container, which restarts under its restartPolicy.</summary>
    Liveness,

    /// <summary>Says whether the container is <c>ready</c>.</summary>
    Readiness,
}

/// <summary>What a probe does: an HTTP GET or a TCP connect.</summary>
internal abstract record ProbeAction;

/// <param name="Scheme">HTTP or HTTPS (lowercased for the URL).</param>
/// <param name="Host">The host to reach; null for the pod's IP.</param>
/// <param name="Port">A port number or the name of one of the container's ports.</param>
/// <param name="Path">The path (and query) of the URL.</param>
/// <param name="Headers">The request's headers, in order.</param>
internal sealed record HttpGetProbeAction(string Scheme, string? Host, IntOrString Port, string Path, IReadOnlyList<KeyValuePair<string, string>> Headers) : ProbeAction;

/// <param name="Host">The host to reach; null for the pod's IP.</param>
/// <param name="Port">A port number or the name of one of the container's ports.</param>
internal sealed record TcpSocketProbeAction(string? Host, IntOrString Port) : ProbeAction;

/// <summary>
/// One probe as the kubelet reads it, with the API server's defaults for what is unset (pods from files
/// get no defaulting): periodSeconds 10, timeoutSeconds 1, successThreshold 1 (always 1 for liveness
/// and startup, as the API server requires), failureThreshold 3, initialDelaySeconds 0.
/// </summary>
internal sealed record ProbeSpec(ProbeKind Kind, ProbeAction Action, TimeSpan InitialDelay, TimeSpan Period, TimeSpan Timeout, int SuccessThreshold, int FailureThreshold)
{
    public const int DefaultPeriodSeconds = 10;
    public const int DefaultTimeoutSeconds = 1;
    public const int DefaultFailureThreshold = 3;

    /// <summary>
    /// The probe, or null when there is none or it is neither httpGet nor tcpSocket (exec and grpc are
    /// refused at admission; one that slips through is ignored, as if absent, rather than never passing).
    /// </summary>
    public static ProbeSpec? Of(ProbeKind kind, V1Probe? probe)
    {
        if (probe is null || ActionOf(probe) is not { } action)
        {
            return null;
        }

        static int AtLeastOne(int? value, int fallback) => value is { } v && v >= 1 ? v : fallback;
        return new ProbeSpec(
            kind,
            action,
            TimeSpan.FromSeconds(Math.Max(0, probe.InitialDelaySeconds ?? 0)),
            TimeSpan.FromSeconds(AtLeastOne(probe.PeriodSeconds, DefaultPeriodSeconds)),
            TimeSpan.FromSeconds(AtLeastOne(probe.TimeoutSeconds, DefaultTimeoutSeconds)),
            kind == ProbeKind.Readiness ? AtLeastOne(probe.SuccessThreshold, 1) : 1,
            AtLeastOne(probe.FailureThreshold, DefaultFailureThreshold));
    }

    /// <summary>The kubelet's name of the probe in its Events: Startup, Liveness, Readiness.</summary>
    public string Name => Kind.ToString();

    private static ProbeAction? ActionOf(V1Probe probe)
    {
        if (probe.HttpGet is { } get)
        {
            var headers = (get.HttpHeaders ?? []).Select(h => new KeyValuePair<string, string>(h.Name, h.Value ?? string.Empty)).ToList();
            var path = string.IsNullOrEmpty(get.Path) ? "/" : get.Path;
            return new HttpGetProbeAction(string.IsNullOrEmpty(get.Scheme) ? "http" : get.Scheme.ToLowerInvariant(), string.IsNullOrEmpty(get.Host) ? null : get.Host, get.Port, path, headers);
        }

        if (probe.TcpSocket is { } tcp)
        {
            return new TcpSocketProbeAction(string.IsNullOrEmpty(tcp.Host) ? null : tcp.Host, tcp.Port);
        }

        return null;
    }
}

/// <summary>A container's probes (any may be null) and whether it is an HTTP handler, whose readiness also waits for its listener.</summary>
internal sealed record ContainerProbes(ProbeSpec? Startup, ProbeSpec? Liveness, ProbeSpec? Readiness)
{
    public static ContainerProbes Of(V1Container container)
    {
        ArgumentNullException.ThrowIfNull(container);
        return new(ProbeSpec.Of(ProbeKind.Startup, container.StartupProbe), ProbeSpec.Of(ProbeKind.Liveness, container.LivenessProbe), ProbeSpec.Of(ProbeKind.Readiness, container.ReadinessProbe));
    }

    public bool Any => Startup is not null || Liveness is not null || Readiness is not null;

    public IEnumerable<ProbeSpec> All => new[] { Startup, Liveness, Readiness }.OfType<ProbeSpec>();
}
