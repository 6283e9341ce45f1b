using k8s.Models;

namespace Krustlet.Stages.Run;

/// <summary>The Events the kubelet records about a pod's containers, with its reasons and its wording.</summary>
internal sealed class ContainerEvents(PodEvents.IPodEventRecorder recorder)
{
    /// <summary>A run was created and started (the kubelet's Created, then Started).</summary>
    public void Started(V1Pod pod, string container)
    {
        recorder.Record(pod, false, KubeletReasons.CreatedContainer, $"Created container {container}", container);
        recorder.Record(pod, false, KubeletReasons.StartedContainer, $"Started container {container}", container);
    }

    /// <summary>A container is being killed because the pod stops.</summary>
    public void Stopping(V1Pod pod, string container) =>
        recorder.Record(pod, false, KubeletReasons.KillingContainer, $"Stopping container {container}", container);

    /// <summary>A container is being killed for <paramref name="cause"/> (its definition changed, a probe failed).</summary>
    public void Killing(V1Pod pod, string container, KillCause cause) =>
        recorder.Record(pod, false, KubeletReasons.KillingContainer, cause.Message, container);

    /// <summary>
    /// A probe attempt that did not simply succeed, a Warning in the kubelet's words: "Liveness probe
    /// failed: …" (Unhealthy), "Readiness probe errored: …" (Unhealthy), "Readiness probe warning: …" (ProbeWarning).
    /// </summary>
    public void Probed(V1Pod pod, string container, Probes.ProbeSpec probe, Probes.ProbeResult result)
    {
        var (reason, verb) = result.Outcome switch
        {
            Probes.ProbeOutcome.Warning => (KubeletReasons.ContainerProbeWarning, "warning"),
            Probes.ProbeOutcome.Error => (KubeletReasons.ContainerUnhealthy, "errored"),
            _ => (KubeletReasons.ContainerUnhealthy, "failed"),
        };
        recorder.Record(pod, true, reason, $"{probe.Name} probe {verb}: {result.Message}", container);
    }

    /// <summary>A failed container waits out its backoff before it restarts (a Warning).</summary>
    public void BackOff(V1Pod pod, string container) =>
        recorder.Record(pod, true, KubeletReasons.BackOffStartContainer, $"Back-off restarting failed container {container} in pod {pod.Metadata.Name}_{pod.Namespace()}({pod.Metadata.Uid})", container);
}
