using System.Globalization;
using k8s.Models;

namespace Krustlet.Stages.Run.Http;

/// <summary>
/// What one HTTP handler container runs with, resolved from its pod: its port, the pod's own overrides
/// of the node's limits (annotations), and its termination grace period (how long in-flight requests may
/// drain when it stops).
/// </summary>
/// <param name="Port">The containerPort of the port named <c>http</c>.</param>
/// <param name="RequestTimeout">The pod's <see cref="HandlerAnnotations.RequestTimeout"/>, or null for the node's.</param>
/// <param name="MaxConcurrentRequests">The pod's <see cref="HandlerAnnotations.MaxConcurrentRequests"/>, or null for the node's.</param>
/// <param name="GracePeriod">The pod's terminationGracePeriodSeconds (30 s when unset, as the API server defaults it).</param>
/// <param name="Namespace">The pod's namespace (metrics, logs).</param>
/// <param name="Pod">The pod's name (metrics, logs).</param>
/// <param name="Problem">Why the annotations cannot be used, or null: the run then fails to start with it.</param>
public sealed record HttpHandlerLaunch(int Port, TimeSpan? RequestTimeout, int? MaxConcurrentRequests, TimeSpan GracePeriod, string Namespace, string Pod, string? Problem = null);

/// <summary>The pod annotations an HTTP handler pod may set.</summary>
public static class HandlerAnnotations
{
    /// <summary>A request's deadline for this pod: a duration (<c>500ms</c>, <c>10s</c>, <c>2m</c>) or whole seconds.</summary>
    public const string RequestTimeout = "krustlet.dev/http-request-timeout";

    /// <summary>Requests of this pod that run at once (a positive whole number).</summary>
    public const string MaxConcurrentRequests = "krustlet.dev/http-max-concurrent-requests";

    /// <summary>The handler launch of <paramref name="container"/> in <paramref name="pod"/>, or null when it has no <c>http</c> port.</summary>
    public static HttpHandlerLaunch? Of(V1Pod pod, V1Container container)
    {
        ArgumentNullException.ThrowIfNull(pod);
        ArgumentNullException.ThrowIfNull(container);
        if (HandlerPort.Of(container) is not { } port)
        {
            return null;
        }

        var annotations = pod.Metadata?.Annotations;
        string? problem = null;
        TimeSpan? timeout = null;
        int? concurrency = null;
        if (annotations?.TryGetValue(RequestTimeout, out var text) == true)
        {
            timeout = ParseDuration(text);
            if (timeout is not { } t || t <= TimeSpan.Zero)
            {
                problem = $"annotation {RequestTimeout}: \"{text}\" is not a positive duration (like 500ms, 10s, 2m)";
                timeout = null;
            }
        }

        if (annotations?.TryGetValue(MaxConcurrentRequests, out var limit) == true)
        {
            if (int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1)
            {
                concurrency = n;
            }
            else
            {
                problem ??= $"annotation {MaxConcurrentRequests}: \"{limit}\" is not a whole number of at least 1";
            }
        }

        var grace = TimeSpan.FromSeconds(Math.Max(0, pod.Spec?.TerminationGracePeriodSeconds ?? 30));
        return new HttpHandlerLaunch(port.ContainerPort, timeout, concurrency, grace, pod.Namespace() ?? "default", pod.Metadata?.Name ?? string.Empty, problem);
    }

    /// <summary>A Go-style duration with one unit (ms, s, m, h) or whole seconds; null when it is neither.</summary>
    internal static TimeSpan? ParseDuration(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        text = text.Trim();
        (string Suffix, double Scale)[] units = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)];
        foreach (var (suffix, scale) in units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(text[..^suffix.Length], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
            {
                return TimeSpan.FromSeconds(value * scale);
            }
        }

        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) ? TimeSpan.FromSeconds(seconds) : null;
    }
}
