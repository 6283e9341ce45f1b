using k8s.Models;
using Krustlet.Pipeline.Engine;
using Krustlet.Stages.Admission;
using Krustlet.Stages.Tests.ImagePull;

namespace Krustlet.Stages.Tests.Admission;

[TestClass]
public sealed class AdmissionStageTests
{
    public TestContext TestContext { get; set; } = null!;

    private static readonly NodeAllocatable Node = new("wasm-node", MaxPods: 2, new ResourceQuantity("2"), new ResourceQuantity("1Gi"));

    private static V1Pod Pod(string name, string? cpu = null, string? memory = null, Action<V1PodSpec>? change = null)
    {
        var requests = new Dictionary<string, ResourceQuantity>();
        if (cpu is not null)
        {
            requests["cpu"] = new ResourceQuantity(cpu);
        }

        if (memory is not null)
        {
            requests["memory"] = new ResourceQuantity(memory);
        }

        var spec = new V1PodSpec { NodeName = "wasm-node", Containers = [new V1Container { Name = "main", Image = "x", Resources = new V1ResourceRequirements { Requests = requests } }] };
        change?.Invoke(spec);
        return new V1Pod { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default", Uid = $"uid-{name}" }, Spec = spec };
    }

    private Task<StageOutcome> Admit(AdmissionStage stage, V1Pod pod) => StageItem.ForAsync(pod, stage, TestContext.CancellationToken);

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Under_disk_pressure_new_pods_are_refused_as_Evicted_and_running_ones_keep_running()
    {
        var signals = new FixedSignals { Disk = new Krustlet.Stages.Pressure.Availability(50L << 30, 100L << 30) };
        using var pressure = new Krustlet.Stages.Pressure.NodePressure(signals, new Krustlet.Stages.Pressure.NodePressureOptions(), new Microsoft.Extensions.Time.Testing.FakeTimeProvider());
        pressure.Evaluate();
        var stage = new AdmissionStage(Node, new AdmissionOptions { Pressure = pressure });
        Assert.AreEqual(StageOutcomeKind.Continue, (await Admit(stage, Pod("before", cpu: "100m"))).Kind);

        signals.Disk = new Krustlet.Stages.Pressure.Availability(1L << 30, 100L << 30);
        pressure.Evaluate();
        var refused = await Admit(stage, Pod("during", cpu: "100m"));

        Assert.AreEqual(KubeletReasons.Evicted, refused.Reason);
        Assert.AreEqual("The node had condition: [DiskPressure]. ", refused.Message);
        Assert.AreEqual(StageOutcomeKind.Continue, (await Admit(stage, Pod("before", cpu: "100m"))).Kind, "a pod admitted before is not refused at its update");
    }

    private sealed class FixedSignals : Krustlet.Stages.Pressure.INodeSignalSource
    {
        public Krustlet.Stages.Pressure.Availability Disk { get; set; }

        public Krustlet.Stages.Pressure.NodeSignals Read() => new(new(4L << 30, 8L << 30), Disk, null, Disk, null, null);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Pods_beyond_max_pods_are_refused_with_OutOfpods()
    {
        var stage = new AdmissionStage(Node);
        Assert.AreEqual(StageOutcomeKind.Continue, (await Admit(stage, Pod("a"))).Kind);
        Assert.AreEqual(StageOutcomeKind.Continue, (await Admit(stage, Pod("b"))).Kind);

        var third = await Admit(stage, Pod("c"));

        Assert.AreEqual("OutOfpods", third.Reason);
        Assert.AreEqual("Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2", third.Message);
        Assert.AreEqual(StageOutcomeKind.Continue, (await Admit(stage, Pod("a"))).Kind, "an admitted pod's update is admitted again");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Requests_beyond_allocatable_are_refused_with_OutOfcpu_and_OutOfmemory()
    {
        var stage = new AdmissionStage(Node with { MaxPods = 10 });
        Assert.AreEqual(StageOutcomeKind.Continue, (await Admit(stage, Pod("half", cpu: "1500m", memory: "512Mi"))).Kind);

        var cpu = await Admit(stage, Pod("cpu", cpu: "1"));
        var memory = await Admit(stage, Pod("memory", memory: "600Mi"));

        Assert.AreEqual("OutOfcpu", cpu.Reason);
        Assert.AreEqual("Node didn't have enough resource: cpu, requested: 1000m, used: 1500m, capacity: 2000m", cpu.Message);
        Assert.AreEqual("OutOfmemory", memory.Reason);
        StringAssert.StartsWith(memory.Message, "Node didn't have enough resource: memory, requested: 629145600, used: 536870912, capacity: 1073741824");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow("hostNetwork", "spec.hostNetwork: a WebAssembly sandbox cannot join the host network")]
    [DataRow("hostPID", "spec.hostPID: ")]
    [DataRow("privileged", "spec.containers[main].securityContext.privileged: ")]
    [DataRow("hostPort", "spec.containers[main].ports[8080].hostPort: a WebAssembly sandbox cannot bind host ports")]
    public async Task Fields_a_sandbox_cannot_honour_are_refused_by_name(string field, string message)
    {
        var pod = Pod("p", change: spec =>
        {
            switch (field)
            {
                case "hostNetwork": spec.HostNetwork = true; break;
                case "hostPID": spec.HostPID = true; break;
                case "privileged": spec.Containers[0].SecurityContext = new V1SecurityContext { Privileged = true }; break;
                default: spec.Containers[0].Ports = [new V1ContainerPort { ContainerPort = 8080, HostPort = 80 }]; break;
            }
        });

        var outcome = await Admit(new AdmissionStage(Node), pod);

        Assert.AreEqual("UnsupportedPodSpec", outcome.Reason);
        StringAssert.StartsWith(outcome.Message, message);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_pod_bound_to_another_node_is_refused()
    {
        var outcome = await Admit(new AdmissionStage(Node), Pod("p", change: s => s.NodeName = "other"));

        Assert.AreEqual("NodeName", outcome.Reason);
        Assert.AreEqual("Pod is bound to node other, not to this node wasm-node", outcome.Message);
    }
}
