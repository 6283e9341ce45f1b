namespace Krustlet.Stages.Kubernetes;

/// <summary>
/// Client-side rate limiting of API requests, as the kubelet's kubeAPIQPS and kubeAPIBurst: a token
/// bucket holding <paramref name="burst"/> tokens, refilled at <paramref name="qps"/> per second. A
/// request waits for a token; watches (long-running) are not counted, as in client-go.
/// Pass it as a handler to <c>new Kubernetes(config, limiter)</c>.
/// </summary>
public sealed class ApiRateLimiter(double qps = ApiRateLimiter.DefaultQps, int burst = ApiRateLimiter.DefaultBurst, TimeProvider? time = null) : DelegatingHandler
{
    /// <summary>The kubelet's default kubeAPIQPS.</summary>
    public const double DefaultQps = 50;

    /// <summary>The kubelet's default kubeAPIBurst.</summary>
    public const int DefaultBurst = 100;

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private double _tokens = burst;
    private long _last = (time ?? TimeProvider.System).GetTimestamp();

    public double Qps { get; } = qps > 0 ? qps : throw new ArgumentOutOfRangeException(nameof(qps), "QPS must be positive.");

    public int Burst { get; } = burst > 0 ? burst : throw new ArgumentOutOfRangeException(nameof(burst), "Burst must be positive.");

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.RequestUri?.Query.Contains("watch=true", StringComparison.Ordinal) != true)
        {
            await TakeAsync(cancellationToken);
        }

        return await base.SendAsync(request, cancellationToken);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _gate.Dispose();
        }

        base.Dispose(disposing);
    }

    private async Task TakeAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            while (true)
            {
                var now = _time.GetTimestamp();
                _tokens = Math.Min(Burst, _tokens + (_time.GetElapsedTime(_last, now).TotalSeconds * Qps));
                _last = now;
                if (_tokens >= 1)
                {
                    _tokens -= 1;
                    return;
                }

                await Task.Delay(TimeSpan.FromSeconds((1 - _tokens) / Qps), _time, cancellationToken);
            }
        }
        finally
        {
            _gate.Release();
        }
    }
}
