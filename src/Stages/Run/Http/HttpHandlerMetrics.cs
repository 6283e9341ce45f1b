using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Krustlet.Stages.Run.Http;

/// <summary>
/// Per-pod request counters and a latency histogram for HTTP handler pods, exported on the kubelet API's
/// <c>/metrics</c> as <c>krustlet_http_requests_total</c> and <c>krustlet_http_request_duration_seconds</c>,
/// tagged with the pod's namespace and name, the container, and the status code.
/// </summary>
public sealed class HttpHandlerMetrics : IDisposable
{
    public const string MeterName = "Krustlet.Http";

    private readonly Meter _meter;
    private readonly Counter<long> _requests;
    private readonly Histogram<double> _duration;
    private readonly UpDownCounter<long> _inFlight;

    public HttpHandlerMetrics(IMeterFactory? meterFactory)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _requests = _meter.CreateCounter<long>("krustlet.http.requests", "{request}", "Requests HTTP handler pods answered, by status code.");
        _duration = _meter.CreateHistogram<double>(
            "krustlet.http.request.duration",
            "s",
            "Time from a request's arrival at a handler pod to its last byte, by status code.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        _inFlight = _meter.CreateUpDownCounter<long>("krustlet.http.requests.in_flight", "{request}", "Requests HTTP handler pods are running or queueing now.");
    }

    internal void Record(HttpHandlerLaunch pod, string container, int status, TimeSpan duration)
    {
        var tags = new TagList
        {
            { "namespace", pod.Namespace },
            { "pod", pod.Pod },
            { "container", container },
            { "code", status },
        };
        _requests.Add(1, tags);
        _duration.Record(duration.TotalSeconds, tags);
    }

    internal void InFlight(HttpHandlerLaunch pod, string container, int delta) =>
        _inFlight.Add(delta, new TagList { { "namespace", pod.Namespace }, { "pod", pod.Pod }, { "container", container } });

    public void Dispose() => _meter.Dispose();
}
