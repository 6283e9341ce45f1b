using k8s.Models;
using Krustlet.Stages.Run;

namespace Krustlet.Stages.StatusReport;

/// <summary>
/// Turns a status report into the PodStatus a kubelet would write: phase, conditions, IPs and container
/// statuses. Used by the API server writer and by the agent's own view of its pods (the kubelet API).
/// </summary>
/// <param name="nodeIp">The node's IP: every pod's hostIP and podIP (wasm pods share the node's network).</param>
public sealed class PodStatusBuilder(string nodeIp)
{
    /// <summary>The PodStatus a kubelet would write for this report.</summary>
    public V1PodStatus ToStatus(PodReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var runtime = report.Runtime;
        var now = report.At.UtcDateTime;
        if (runtime is null)
        {
            // A pod the pipeline has not started yet, or refused before it had containers.
            var failed = report.Kind == PodReportKind.Failed;
            return new V1PodStatus
            {
                Phase = failed ? "Failed" : "Pending",
                Reason = failed ? report.Reason : null,
                Message = failed ? report.Message : null,
                HostIP = nodeIp,
                Conditions = [Condition("PodScheduled", true, now)],
            };
        }

        var initDone = runtime.InitContainers.All(c => c.State is TerminatedState { ExitCode: 0 });
        var allReady = runtime.Containers.Count > 0 && runtime.Containers.All(c => c.Ready);
        return new V1PodStatus
        {
            Phase = runtime.Phase.ToString(),
            QosClass = runtime.QosClass,
            Reason = runtime.Reason,
            Message = runtime.Message,
            HostIP = nodeIp,
            HostIPs = [new V1HostIP { Ip = nodeIp }],
            PodIP = nodeIp,
            PodIPs = [new V1PodIP { Ip = nodeIp }],
            StartTime = runtime.StartTime.UtcDateTime,
            Conditions =
            [
                Condition("PodScheduled", true, now),
                Condition("PodReadyToStartContainers", true, now),
                Condition("Initialized", initDone, now, initDone ? null : KubeletReasons.ContainersNotInitialized),
                Condition("ContainersReady", allReady, now, allReady ? null : KubeletReasons.ContainersNotReady),
                Condition("Ready", allReady, now, allReady ? null : KubeletReasons.ContainersNotReady),
            ],
            InitContainerStatuses = [.. runtime.InitContainers.Select(Container)],
            ContainerStatuses = [.. runtime.Containers.Select(Container)],
        };
    }

    private static V1PodCondition Condition(string type, bool status, DateTime at, string? reason = null) =>
        new() { Type = type, Status = status ? "True" : "False", LastTransitionTime = at, Reason = reason };

    private static V1ContainerStatus Container(ContainerStatusSnapshot snapshot) => new()
    {
        Name = snapshot.Name,
        Image = snapshot.Image,
        ImageID = snapshot.ImageId,
        ContainerID = snapshot.ContainerId,
        RestartCount = snapshot.RestartCount,
        Ready = snapshot.Ready,
        Started = snapshot.Started,
        State = State(snapshot.State),
        LastState = snapshot.LastState is { } last ? State(last) : new V1ContainerState(),
    };

    private static V1ContainerState State(ContainerState state) => state switch
    {
        WaitingState w => new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = w.Reason, Message = w.Message } },
        RunningState r => new V1ContainerState { Running = new V1ContainerStateRunning { StartedAt = r.StartedAt.UtcDateTime } },
        TerminatedState t => new V1ContainerState
        {
            Terminated = new V1ContainerStateTerminated
            {
                ExitCode = t.ExitCode,
                Reason = t.Reason,
                Message = t.Message,
                StartedAt = t.StartedAt.UtcDateTime,
                FinishedAt = t.FinishedAt.UtcDateTime,
                ContainerID = t.ContainerId,
            },
        },
        _ => new V1ContainerState(),
    };

}
