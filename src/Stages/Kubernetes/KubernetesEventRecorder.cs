using System.Threading.Channels;
using k8s;
using k8s.Models;
using Krustlet.Stages.PodEvents;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Stages.Kubernetes;

/// <summary>
/// Posts pod Events to the API server from a bounded queue, so recording never waits for the API.
/// Events are best effort, as in the kubelet: when the queue is full or a post fails, the event is
/// dropped and counted.
/// </summary>
public sealed partial class KubernetesEventRecorder : IPodEventRecorder, IAsyncDisposable
{
    private readonly IKubernetes _client;
    private readonly string _nodeName;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<Corev1Event> _queue = Channel.CreateBounded<Corev1Event>(new BoundedChannelOptions(1000) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly Task _sender;
    private int _dropped;

    private KubernetesEventRecorder(IKubernetes client, string nodeName, TimeProvider time, ILogger logger)
    {
        _client = client;
        _nodeName = nodeName;
        _time = time;
        _logger = logger;
        _sender = SendAsync();
    }

    /// <summary>Events dropped (queue full or post failed).</summary>
    public int Dropped => Volatile.Read(ref _dropped);

    public static KubernetesEventRecorder Start(IKubernetes client, string nodeName, TimeProvider? time = null, ILogger? logger = null) =>
        new(client, nodeName, time ?? TimeProvider.System, logger ?? NullLogger.Instance);

    public void Record(V1Pod pod, bool warning, string reason, string message, string? container = null)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var now = _time.GetUtcNow().UtcDateTime;
        var evt = new Corev1Event
        {
            ApiVersion = "v1",
            Kind = "Event",
            Metadata = new V1ObjectMeta { Name = $"{pod.Metadata.Name}.{Guid.NewGuid():N}"[..Math.Min(63, pod.Metadata.Name.Length + 17)], NamespaceProperty = pod.Namespace() },
            InvolvedObject = new V1ObjectReference
            {
                ApiVersion = "v1",
                Kind = "Pod",
                Name = pod.Metadata.Name,
                NamespaceProperty = pod.Namespace(),
                Uid = pod.Metadata.Uid,
                FieldPath = container is null ? null : $"spec.containers{{{container}}}",
            },
            Reason = reason,
            Message = message,
            Type = warning ? "Warning" : "Normal",
            Source = new V1EventSource { Component = "kubelet", Host = _nodeName },
            ReportingComponent = "kubelet",
            ReportingInstance = _nodeName,
            FirstTimestamp = now,
            LastTimestamp = now,
            Count = 1,
        };
        if (!_queue.Writer.TryWrite(evt))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>Sends what is queued, then stops.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _sender;
    }

    private async Task SendAsync()
    {
        await Task.Yield();
        await foreach (var evt in _queue.Reader.ReadAllAsync())
        {
            try
            {
                await _client.CoreV1.CreateNamespacedEventAsync(evt, evt.Metadata.NamespaceProperty);
            }
            catch (Exception ex) when (ex is k8s.Autorest.HttpOperationException or HttpRequestException)
            {
                Interlocked.Increment(ref _dropped);
                Log.Dropped(_logger, evt.Reason, ex.Message);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(3300, LogLevel.Debug, "Event {Reason} dropped: {Message}")]
        public static partial void Dropped(ILogger logger, string reason, string message);
    }
}
