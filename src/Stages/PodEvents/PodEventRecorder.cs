using k8s.Models;

namespace Krustlet.Stages.PodEvents;

/// <summary>Kubernetes Events about a pod, as the kubelet emits them (Pulling, Pulled, Failed, Created, Started, Killing, BackOff).</summary>
public interface IPodEventRecorder
{
    /// <summary>Records an event; never throws and never waits for the API.</summary>
    /// <param name="pod">The pod the event is about.</param>
    /// <param name="warning">A Warning event (else Normal).</param>
    /// <param name="reason">The kubelet's reason.</param>
    /// <param name="message">What happened.</param>
    /// <param name="container">The container, for the event's fieldPath.</param>
    void Record(V1Pod pod, bool warning, string reason, string message, string? container = null);
}

/// <summary>Records nothing: the default when no cluster is there to tell.</summary>
public sealed class NullPodEventRecorder : IPodEventRecorder
{
    public static NullPodEventRecorder Instance { get; } = new();

    public void Record(V1Pod pod, bool warning, string reason, string message, string? container = null)
    {
    }
}
