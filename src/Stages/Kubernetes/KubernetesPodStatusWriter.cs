using System.Globalization;
using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Stages.Kubernetes;

/// <summary>
/// Writes pod reports to the API server as the kubelet does: computes the PodStatus (phase, conditions,
/// startTime, host and pod IPs, init and app container statuses with the kubelet's states and reasons)
/// and merge-patches <c>pods/status</c>. Conflicts, 429 (honouring Retry-After) and 5xx are retried with
/// backoff until the write lands; a pod that no longer exists needs no status. After the final report of
/// a pod that is being deleted gracefully, the pod is deleted with gracePeriodSeconds=0.
/// </summary>
public sealed partial class KubernetesPodStatusWriter(IKubernetes client, string nodeIp, TimeProvider? time = null, ILogger? logger = null) : IPodReportWriter
{
    private static readonly RestartBackoffOptions RetryDelays = new() { Initial = TimeSpan.FromMilliseconds(100), Max = TimeSpan.FromSeconds(30) };

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly PodStatusBuilder _statuses = new(nodeIp);
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _written = new(StringComparer.Ordinal);

    public async ValueTask WriteAsync(PodReport report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (report.IsFinal)
        {
            _written.TryRemove(report.Uid, out _);

            // As the kubelet: the pod's last status (its containers terminated), then the deletion.
            if (report.Runtime is not null)
            {
                var finalStatus = new V1Patch(new { status = ToStatus(report) }, V1Patch.PatchType.MergePatch);
                await RetryAsync(report, "final status patch", async ct =>
                {
                    await client.CoreV1.PatchNamespacedPodStatusAsync(finalStatus, report.Name, report.Namespace, cancellationToken: ct);
                }, cancellationToken);
            }

            await RetryAsync(report, "delete", async ct =>
            {
                await client.CoreV1.DeleteNamespacedPodAsync(report.Name, report.Namespace, new V1DeleteOptions { GracePeriodSeconds = 0 }, gracePeriodSeconds: 0, cancellationToken: ct);
            }, cancellationToken);
            return;
        }

        var status = ToStatus(report);
        var key = Unchanging(status);
        if (_written.TryGetValue(report.Uid, out var last) && last == key)
        {
            return; // the same status again: the kubelet's status manager skips it too
        }

        var patch = new V1Patch(new { status }, V1Patch.PatchType.MergePatch);
        await RetryAsync(report, "status patch", async ct =>
        {
            await client.CoreV1.PatchNamespacedPodStatusAsync(patch, report.Name, report.Namespace, cancellationToken: ct);
        }, cancellationToken);
        _written[report.Uid] = key;
    }

    // The status without its condition timestamps, to tell a real change from a repeat.
    private static string Unchanging(V1PodStatus status)
    {
        var times = status.Conditions?.Select(c => c.LastTransitionTime).ToList();
        foreach (var condition in status.Conditions ?? [])
        {
            condition.LastTransitionTime = null;
        }

        var text = KubernetesJson.Serialize(status);
        for (var i = 0; i < (times?.Count ?? 0); i++)
        {
            status.Conditions![i].LastTransitionTime = times![i];
        }

        return text;
    }

    /// <summary>The PodStatus a kubelet would write for this report.</summary>
    public V1PodStatus ToStatus(PodReport report) => _statuses.ToStatus(report);

    private async Task RetryAsync(PodReport report, string what, Func<CancellationToken, Task> call, CancellationToken cancellationToken)
    {
        var delays = new RestartBackoff(RetryDelays);
        while (true)
        {
            TimeSpan wait;
            try
            {
                await call(cancellationToken);
                return;
            }
            catch (HttpOperationException ex) when (ex.Response.StatusCode == HttpStatusCode.NotFound)
            {
                return; // the pod is gone: nothing to write
            }
            catch (HttpOperationException ex) when (IsRetried(ex.Response.StatusCode))
            {
                var next = delays.Next(TimeSpan.Zero);
                wait = RetryAfter(ex) ?? next;
                Log.Retrying(_logger, what, report.Namespace, report.Name, (int)ex.Response.StatusCode, wait);
            }
            catch (HttpRequestException)
            {
                wait = delays.Next(TimeSpan.Zero); // the API server could not be reached
                Log.Retrying(_logger, what, report.Namespace, report.Name, 0, wait);
            }

            await Task.Delay(wait, _time, cancellationToken);
        }
    }

    private static bool IsRetried(HttpStatusCode status) =>
        status is HttpStatusCode.Conflict or HttpStatusCode.TooManyRequests || (int)status >= 500;

    private static TimeSpan? RetryAfter(HttpOperationException ex) =>
        ex.Response.Headers.TryGetValue("Retry-After", out var values)
        && int.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            ? TimeSpan.FromSeconds(seconds)
            : null;

    private static partial class Log
    {
        [LoggerMessage(3100, LogLevel.Warning, "Pod {Namespace}/{Name}: {What} answered {Status}; retrying in {Wait}")]
        public static partial void Retrying(ILogger logger, string what, string @namespace, string name, int status, TimeSpan wait);
    }
}
