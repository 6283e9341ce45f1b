using System.Globalization;
using k8s.Models;
using Krustlet.Pipeline.Engine;
using Krustlet.Stages.Run.Http;

namespace Krustlet.Stages.Admission;

/// <summary>What this node offers, for admission.</summary>
/// <param name="NodeName">The node's name; a pod bound elsewhere is refused.</param>
/// <param name="MaxPods">The kubelet's maxPods (default 110).</param>
/// <param name="AllocatableCpu">Allocatable CPU.</param>
/// <param name="AllocatableMemory">Allocatable memory.</param>
public sealed record NodeAllocatable(string NodeName, int MaxPods, ResourceQuantity AllocatableCpu, ResourceQuantity AllocatableMemory)
{
    /// <summary>All of this machine's cores and the memory available to this process, as the node reports them.</summary>
    public static NodeAllocatable OfThisMachine(string nodeName, int maxPods) => new(
        nodeName,
        maxPods,
        new ResourceQuantity(Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)),
        new ResourceQuantity(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes.ToString(CultureInfo.InvariantCulture)));
}

/// <summary>
/// Decides whether this node can run a pod, as the kubelet's admission does: its names must be valid as
/// the API server validates them (<see cref="PodValidation"/>, reason <c>Invalid</c>), it must be bound to
/// this node, fit in the pod count and the allocatable CPU and memory left by the pods already admitted,
/// find its HTTP handler ports (<see cref="Run.Http.HandlerPort"/>) free, and ask for nothing a wasm
/// sandbox cannot honour. A refused pod fails with the kubelet's reason (<c>OutOfpods</c>,
/// <c>OutOfcpu</c>, <c>OutOfmemory</c>, <c>NodeName</c>, <c>NodePorts</c>), <c>UnsupportedPodSpec</c>
/// naming the field, or <c>NetworkForbidden</c>; while the node is under pressure, new pods are refused
/// as the kubelet's eviction manager refuses them (<see cref="Pressure.NodePressure.Admit"/>, <c>Evicted</c>). Admitted pods hold their share and their handler ports
/// until their teardown; checking and holding are one step under one lock, so of two pods admitted at
/// once on one port exactly one gets it.
/// </summary>
public sealed class AdmissionStage : IStage<V1Pod>
{
    private readonly NodeAllocatable _node;
    private readonly AdmissionOptions _options;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (decimal Cpu, decimal Memory)> _admitted = new(StringComparer.Ordinal);
    private readonly HandlerPortTable _ports = new();

    /// <param name="node">What the node offers.</param>
    /// <param name="maxContainersPerPod">The most init and app containers one pod may have together.</param>
    public AdmissionStage(NodeAllocatable node, int maxContainersPerPod = PodValidation.DefaultMaxContainers)
        : this(node, new AdmissionOptions { MaxContainersPerPod = maxContainersPerPod })
    {
    }

    /// <param name="node">What the node offers.</param>
    /// <param name="options">Container count, outbound network policy, the agent's own ports.</param>
    public AdmissionStage(NodeAllocatable node, AdmissionOptions options)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(options);
        _node = node;
        _options = options;
    }

    public string Name => StageNames.Admission;

    /// <summary>Handler ports held by admitted pods.</summary>
    public int HeldPorts
    {
        get
        {
            lock (_lock)
            {
                return _ports.Count;
            }
        }
    }

    /// <summary>Pods admitted and not yet torn down.</summary>
    public int Admitted
    {
        get
        {
            lock (_lock)
            {
                return _admitted.Count;
            }
        }
    }

    public ValueTask<StageOutcome> ApplyAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        return ValueTask.FromResult(Admit(item.Key, item.Value!));
    }

    public ValueTask<StageOutcome> TeardownAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        lock (_lock)
        {
            _admitted.Remove(item.Key);
            _ports.Release(item.Key);
        }

        return ValueTask.FromResult(StageOutcome.Continue);
    }

    internal StageOutcome Admit(string uid, V1Pod pod)
    {
        var node = _node;
        if (PodValidation.Validate(pod, _options.MaxContainersPerPod) is { } invalid)
        {
            return StageOutcome.Fail(KubeletReasons.Invalid, invalid);
        }

        if (pod.Spec?.NodeName is { Length: > 0 } bound && bound != node.NodeName)
        {
            return StageOutcome.Fail(KubeletReasons.NodeName, $"Pod is bound to node {bound}, not to this node {node.NodeName}");
        }

        if ((Unsupported(pod) ?? HandlerPortTable.Unsupported(pod) ?? OutboundNetwork.Invalid(pod)) is { } field)
        {
            return StageOutcome.Fail(KubeletReasons.UnsupportedPodSpec, field);
        }

        if (!_options.AllowOutboundNetwork && OutboundNetwork.Requested(pod))
        {
            return StageOutcome.Fail(KubeletReasons.NetworkForbidden, $"metadata.annotations[{OutboundNetwork.Annotation}]: this node forbids outbound network for pods (Wasm:AllowNetwork is false)");
        }

        var (cpu, memory) = Requests(pod);
        lock (_lock)
        {
            if (_admitted.ContainsKey(uid))
            {
                return StageOutcome.Continue; // an update of a pod already running here
            }

            if (_options.Pressure?.Admit(pod) is { } pressure)
            {
                return StageOutcome.Fail(KubeletReasons.Evicted, pressure);
            }

            if (_admitted.Count + 1 > node.MaxPods)
            {
                return StageOutcome.Fail(KubeletReasons.OutOfPods, $"Node didn't have enough resource: pods, requested: 1, used: {_admitted.Count}, capacity: {node.MaxPods}");
            }

            var usedCpu = _admitted.Values.Sum(a => a.Cpu);
            var allocatableCpu = (decimal)node.AllocatableCpu.ToDouble();
            if (cpu > 0 && usedCpu + cpu > allocatableCpu)
            {
                return StageOutcome.Fail(KubeletReasons.OutOfCpu, string.Create(CultureInfo.InvariantCulture, $"Node didn't have enough resource: cpu, requested: {cpu * 1000:0}m, used: {usedCpu * 1000:0}m, capacity: {allocatableCpu * 1000:0}m"));
            }

            var usedMemory = _admitted.Values.Sum(a => a.Memory);
            var allocatableMemory = (decimal)node.AllocatableMemory.ToDouble();
            if (memory > 0 && usedMemory + memory > allocatableMemory)
            {
                return StageOutcome.Fail(KubeletReasons.OutOfMemory, string.Create(CultureInfo.InvariantCulture, $"Node didn't have enough resource: memory, requested: {memory:0}, used: {usedMemory:0}, capacity: {allocatableMemory:0}"));
            }

            if (_ports.Conflict(pod, _options.ReservedPorts) is { } conflict)
            {
                return StageOutcome.Fail(KubeletReasons.NodePorts, conflict);
            }

            _admitted[uid] = (cpu, memory);
            _ports.Hold(uid, pod);
            return StageOutcome.Continue;
        }
    }

    // A pod's effective request: the larger of the app containers' sum and the largest init container.
    private static (decimal Cpu, decimal Memory) Requests(V1Pod pod)
    {
        static decimal Get(V1Container c, string name) =>
            c.Resources?.Requests is { } requests && requests.TryGetValue(name, out var q) ? (decimal)q.ToDouble() : 0m;

        var apps = pod.Spec?.Containers ?? [];
        var inits = pod.Spec?.InitContainers ?? [];
        return (
            Math.Max(apps.Sum(c => Get(c, "cpu")), inits.Select(c => Get(c, "cpu")).DefaultIfEmpty().Max()),
            Math.Max(apps.Sum(c => Get(c, "memory")), inits.Select(c => Get(c, "memory")).DefaultIfEmpty().Max()));
    }

    // Fields that ask for the host or for Linux privileges a wasm sandbox does not have.
    private static string? Unsupported(V1Pod pod)
    {
        var spec = pod.Spec;
        if (spec is null)
        {
            return "spec: the pod has no spec";
        }

        if (spec.HostNetwork == true)
        {
            return "spec.hostNetwork: a WebAssembly sandbox cannot join the host network";
        }

        if (spec.HostPID == true)
        {
            return "spec.hostPID: a WebAssembly sandbox has no process namespace to share";
        }

        if (spec.HostIPC == true)
        {
            return "spec.hostIPC: a WebAssembly sandbox has no IPC namespace to share";
        }

        foreach (var (container, kind) in (spec.InitContainers ?? []).Select(c => (c, "initContainers")).Concat(spec.Containers.Select(c => (c, "containers"))))
        {
            var path = $"spec.{kind}[{container.Name}]";
            if (container.SecurityContext?.Privileged == true)
            {
                return $"{path}.securityContext.privileged: a WebAssembly sandbox cannot be privileged";
            }

            if (container.SecurityContext?.Capabilities?.Add is { Count: > 0 } added)
            {
                return $"{path}.securityContext.capabilities.add: a WebAssembly sandbox has no Linux capabilities ({string.Join(", ", added)})";
            }

            // An HTTP handler's port is the node's port already; its hostPort may say so (HandlerPortTable checks it).
            var handler = kind == "containers" ? HandlerPort.Of(container) : null;
            if (container.Ports?.FirstOrDefault(p => p.HostPort is > 0 && !ReferenceEquals(p, handler)) is { } port)
            {
                return $"{path}.ports[{port.ContainerPort}].hostPort: a WebAssembly sandbox cannot bind host ports";
            }

            if (UnsupportedProbe(path, container) is { } probe)
            {
                return probe;
            }

            if (container.VolumeDevices is { Count: > 0 })
            {
                return $"{path}.volumeDevices: block devices cannot be given to a WebAssembly sandbox";
            }
        }

        return null;
    }
    // Probes and hooks that need a process to exec or a gRPC client the agent does not have.
    private static string? UnsupportedProbe(string path, V1Container container)
    {
        foreach (var (probe, name) in new[] { (container.LivenessProbe, "livenessProbe"), (container.ReadinessProbe, "readinessProbe"), (container.StartupProbe, "startupProbe") })
        {
            if (probe?.Exec is not null)
            {
                return $"{path}.{name}.exec: a WebAssembly container has no shell or processes to exec a probe command; use httpGet or tcpSocket";
            }

            if (probe?.Grpc is not null)
            {
                return $"{path}.{name}.grpc: gRPC probes are not implemented by this node; use httpGet or tcpSocket";
            }
        }

        foreach (var (hook, name) in new[] { (container.Lifecycle?.PostStart, "postStart"), (container.Lifecycle?.PreStop, "preStop") })
        {
            if (hook?.Exec is not null)
            {
                return $"{path}.lifecycle.{name}.exec: a WebAssembly container has no shell or processes to exec a hook command";
            }
        }

        return null;
    }
}
