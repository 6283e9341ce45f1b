using System.Runtime.CompilerServices;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.PodEvents;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Stages.Kubernetes;

/// <summary>
/// The node's pods from the API server: list, then watch with bookmarks from the list's
/// resourceVersion, pods selected by <c>spec.nodeName</c>. A dropped watch resumes from the last
/// resourceVersion seen; a 410 Gone (or any ERROR event) relists, and a pod that disappeared in the gap
/// is deleted. An event that changes nothing the node acts on (the same event again, or a change of
/// status only, such as the agent's own status writes) is not delivered.
/// Transient API errors are retried with backoff. Each watch asks the server to end it after
/// <see cref="WatchTimeout"/> (as the kubelet's reflector does) and is abandoned by the client if
/// nothing at all arrives for that long plus a margin, so a silently stalled connection never stops
/// the node from seeing its pods.
/// </summary>
public sealed partial class KubernetesPodSource(IKubernetes client, string nodeName, TimeProvider? time = null, ILogger? logger = null) : IEventSource<V1Pod>
{
    private static readonly Run.RestartBackoffOptions RetryDelays = new() { Initial = TimeSpan.FromMilliseconds(200), Max = TimeSpan.FromSeconds(30) };

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private int _lists;
    private int _watches;

    public string Name => "watch";

    /// <summary>How long one watch request lasts (its timeoutSeconds); the client gives up on a silent one after this plus 30 s.</summary>
    public TimeSpan WatchTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How many times the pods were listed (the first list and every relist).</summary>
    public int Lists => Volatile.Read(ref _lists);

    /// <summary>How many watch requests were made.</summary>
    public int Watches => Volatile.Read(ref _watches);

    public async IAsyncEnumerable<PipelineEvent<V1Pod>> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var selector = $"spec.nodeName={nodeName}";
        var seen = new Dictionary<string, string?>(StringComparer.Ordinal); // uid → fingerprint of what was last delivered
        string? resourceVersion = null;
        var delays = new Run.RestartBackoff(RetryDelays);
        while (!cancellationToken.IsCancellationRequested)
        {
            if (resourceVersion is null)
            {
                V1PodList? list = null;
                try
                {
                    Interlocked.Increment(ref _lists);
                    list = await client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: selector, cancellationToken: cancellationToken);
                }
                catch (Exception ex) when (IsTransient(ex, cancellationToken))
                {
                    Log.ApiFailed(_logger, "list", ex.Message);
                }

                if (list is null)
                {
                    await Task.Delay(delays.Next(TimeSpan.Zero), _time, cancellationToken);
                    continue;
                }

                delays.Reset();
                var present = new HashSet<string>(StringComparer.Ordinal);
                foreach (var pod in list.Items)
                {
                    present.Add(pod.Metadata.Uid);
                    if (Deliver(seen, "MODIFIED", pod) is { } evt)
                    {
                        yield return evt;
                    }
                }

                foreach (var gone in seen.Keys.Where(uid => !present.Contains(uid)).ToList())
                {
                    // Deleted while no watch was running: tear it down.
                    seen.Remove(gone);
                    yield return PipelineEvent<V1Pod>.Delete(gone);
                }

                resourceVersion = list.Metadata.ResourceVersion;
            }

            Exception? watchError = null;
            Interlocked.Increment(ref _watches);
            using var silence = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var idle = WatchTimeout + TimeSpan.FromSeconds(30);
            using var guard = _time.CreateTimer(_ => silence.Cancel(), null, idle, Timeout.InfiniteTimeSpan);
            var stream = client.CoreV1.WatchListPodForAllNamespacesAsync(
                allowWatchBookmarks: true,
                fieldSelector: selector,
                resourceVersion: resourceVersion,
                timeoutSeconds: (int)Math.Max(1, WatchTimeout.TotalSeconds),
                onError: ex => watchError ??= ex,
                cancellationToken: silence.Token);
            await using var events = stream.GetAsyncEnumerator(silence.Token);
            while (true)
            {
                (WatchEventType Type, V1Pod Pod) current;
                try
                {
                    if (!await events.MoveNextAsync())
                    {
                        break;
                    }

                    current = events.Current;
                    guard.Change(idle, Timeout.InfiniteTimeSpan);
                }
                catch (OperationCanceledException) when (silence.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    Log.WatchSilent(_logger, idle);
                    break; // resume from the last resourceVersion
                }
                catch (Exception ex) when (IsTransient(ex, cancellationToken))
                {
                    watchError ??= ex;
                    break;
                }

                if (current.Pod?.Metadata?.ResourceVersion is { } version)
                {
                    resourceVersion = version;
                }

                if (current.Type == WatchEventType.Bookmark)
                {
                    continue;
                }

                if (Deliver(seen, current.Type.ToString().ToUpperInvariant(), current.Pod!) is { } evt)
                {
                    yield return evt;
                }
            }

            if (watchError is KubernetesException { Status.Code: 410 } or HttpOperationException { Response.StatusCode: System.Net.HttpStatusCode.Gone })
            {
                Log.Relisting(_logger, resourceVersion ?? "?");
                resourceVersion = null;
            }
            else if (watchError is KubernetesException)
            {
                resourceVersion = null; // any other ERROR event: start again from a list
            }
            else if (watchError is not null)
            {
                Log.ApiFailed(_logger, "watch", watchError.Message);
                await Task.Delay(delays.Next(TimeSpan.Zero), _time, cancellationToken);
            }
        }
    }

    // The pipeline event for a pod change, unless nothing the node acts on changed since the last event
    // delivered for the pod: the same event twice, or a change of status only (the agent's own status
    // writes come back as MODIFIED events), changes nothing.
    private static PipelineEvent<V1Pod>? Deliver(Dictionary<string, string?> seen, string type, V1Pod pod)
    {
        var uid = pod.Metadata?.Uid;
        if (uid is null)
        {
            return null;
        }

        if (type == "DELETED")
        {
            seen.Remove(uid);
            return PodWatchDecoder.ToEvent(type, pod, out _);
        }

        var fingerprint = Fingerprint(pod);
        if (seen.TryGetValue(uid, out var last) && last == fingerprint)
        {
            return null;
        }

        seen[uid] = fingerprint;
        return PodWatchDecoder.ToEvent(type, pod, out _);
    }

    // What the node acts on: the spec, the deletion timestamp, labels and annotations (the downward API).
    private static string Fingerprint(V1Pod pod)
    {
        var meta = pod.Metadata;
        var text = KubernetesJson.Serialize(new
        {
            spec = pod.Spec,
            deletionTimestamp = meta?.DeletionTimestamp,
            labels = meta?.Labels,
            annotations = meta?.Annotations,
        });
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)));
    }

    private static bool IsTransient(Exception ex, CancellationToken cancellationToken) =>
        !cancellationToken.IsCancellationRequested && ex is HttpRequestException or HttpOperationException or KubernetesException or IOException or TaskCanceledException;


    private static partial class Log
    {
        [LoggerMessage(3000, LogLevel.Warning, "Pod {Operation} failed: {Message}; retrying")]
        public static partial void ApiFailed(ILogger logger, string operation, string message);

        [LoggerMessage(3001, LogLevel.Information, "Watch resourceVersion {ResourceVersion} is gone; relisting pods")]
        public static partial void Relisting(ILogger logger, string resourceVersion);

        [LoggerMessage(3002, LogLevel.Warning, "The pod watch was silent for {Idle}; opening it again")]
        public static partial void WatchSilent(ILogger logger, TimeSpan idle);
    }
}
