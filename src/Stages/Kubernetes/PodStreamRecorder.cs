using System.Globalization;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Krustlet.Pipeline.Replay;

namespace Krustlet.Stages.Kubernetes;

/// <summary>
/// Records the node's pod watch stream in the replay format: one <c>{"type","object"}</c> line per event
/// with <c>offsetSeconds</c> since the recording began; the initial list is recorded as ADDED events.
/// A watch that ends is opened again from the last resourceVersion.
/// </summary>
public static class PodStreamRecorder
{
    /// <summary>Records until cancelled or until <paramref name="maxEvents"/> lines were written; returns how many were.</summary>
    public static async Task<int> RecordAsync(IKubernetes client, string nodeName, TextWriter output, int? maxEvents, TimeProvider? time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(output);
        time ??= TimeProvider.System;
        var started = time.GetTimestamp();
        var selector = $"spec.nodeName={nodeName}";
        var written = 0;

        async Task<bool> WriteAsync(string type, V1Pod pod)
        {
            pod.ApiVersion ??= "v1";
            pod.Kind ??= "Pod";
            var line = new JsonObject
            {
                ["type"] = type,
                ["object"] = JsonNode.Parse(KubernetesJson.Serialize(pod)),
                [WatchStreamReplaySource<V1Pod>.OffsetProperty] = Math.Round(time.GetElapsedTime(started).TotalSeconds, 3),
            };
            await output.WriteLineAsync(line.ToJsonString().AsMemory(), cancellationToken);
            await output.FlushAsync(cancellationToken);
            written++;
            return maxEvents is null || written < maxEvents;
        }

        var list = await client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: selector, cancellationToken: cancellationToken);
        foreach (var pod in list.Items)
        {
            if (!await WriteAsync("ADDED", pod))
            {
                return written;
            }
        }

        var resourceVersion = list.Metadata.ResourceVersion;
        while (!cancellationToken.IsCancellationRequested)
        {
            await foreach (var (type, pod) in client.CoreV1.WatchListPodForAllNamespacesAsync(fieldSelector: selector, resourceVersion: resourceVersion, allowWatchBookmarks: true, cancellationToken: cancellationToken))
            {
                resourceVersion = pod.Metadata?.ResourceVersion ?? resourceVersion;
                if (type == WatchEventType.Bookmark)
                {
                    continue;
                }

                if (!await WriteAsync(type.ToString().ToUpper(CultureInfo.InvariantCulture), pod))
                {
                    return written;
                }
            }
        }

        return written;
    }
}
