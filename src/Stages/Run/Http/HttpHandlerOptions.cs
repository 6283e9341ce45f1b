using System.Diagnostics.Metrics;
using System.Net;

namespace Krustlet.Stages.Run.Http;

/// <summary>
/// The node's settings for HTTP handler pods (<see cref="HandlerPort"/>): where handlers listen and the
/// limits every request runs under. A pod may lower or raise its own deadline and concurrency with
/// annotations (<see cref="HandlerAnnotations"/>).
/// </summary>
public sealed record HttpHandlerOptions
{
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(30);
    public const long DefaultMaxRequestBodyBytes = 16L * 1024 * 1024;
    public const int DefaultMaxConcurrentRequests = 64;
    public const int DefaultRequestQueue = 256;

    /// <summary>The addresses a handler listens on: the node's IP (every pod's IP) in node mode, loopback in standalone.</summary>
    public IReadOnlyList<IPAddress> Addresses { get; init; } = [IPAddress.Loopback];

    /// <summary>How long one request may run, from its arrival to its last byte, before it is answered 504 and its instance interrupted.</summary>
    public TimeSpan RequestTimeout { get; init; } = DefaultRequestTimeout;

    /// <summary>The largest request body a handler takes; a larger one is answered 413. It is the guest's stdin, held in memory.</summary>
    public long MaxRequestBodyBytes { get; init; } = DefaultMaxRequestBodyBytes;

    /// <summary>Requests of one pod that run at once (each is an instance); more wait in its queue.</summary>
    public int MaxConcurrentRequests { get; init; } = DefaultMaxConcurrentRequests;

    /// <summary>Requests of one pod that may wait for an instance; more are answered 503 with Retry-After.</summary>
    public int RequestQueue { get; init; } = DefaultRequestQueue;

    /// <summary>Where the per-pod request counters and latency histogram are created; a private meter when null.</summary>
    public IMeterFactory? MeterFactory { get; init; }

    /// <summary>Every problem with these settings, empty when they are usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Addresses.Count == 0)
        {
            problems.Add("HTTP handlers need at least one address to listen on");
        }

        if (RequestTimeout <= TimeSpan.Zero)
        {
            problems.Add($"Http:RequestTimeout must be positive (got {RequestTimeout})");
        }

        if (MaxRequestBodyBytes < 0)
        {
            problems.Add($"Http:MaxRequestBody must not be negative (got {MaxRequestBodyBytes})");
        }

        if (MaxConcurrentRequests < 1)
        {
            problems.Add($"Http:MaxConcurrentRequests must be at least 1 (got {MaxConcurrentRequests})");
        }

        if (RequestQueue < 0)
        {
            problems.Add($"Http:RequestQueue must not be negative (got {RequestQueue})");
        }

        return problems;
    }
}
