using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Krustlet.Stages.Kubernetes;

namespace Krustlet.Stages.Tests.Kubernetes;

[TestClass]
public sealed class NodeAgentTests : EmulatorTest
{
    private static NodeOptions Options => new("wasm-node", "10.0.0.7")
    {
        Labels = new Dictionary<string, string> { ["team"] = "edge", ["node-role.kubernetes.io/worker"] = "", ["node.kubernetes.io/instance-type"] = "small" },
    };

    private V1Node Node() => KubernetesJson.Deserialize<V1Node>(Api.Get("nodes", string.Empty, "wasm-node")!.ToJsonString());

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Registering_creates_the_node_with_labels_taints_capacity_and_info()
    {
        await new NodeAgent(Client, Options).RegisterAsync(TestContext.CancellationToken);

        var node = Node();
        Assert.AreEqual("wasm32-wasi", node.Metadata.Labels["kubernetes.io/arch"]);
        Assert.AreEqual("wasm32-wasi", node.Metadata.Labels["kubernetes.io/os"]);
        Assert.AreEqual("wasm-node", node.Metadata.Labels["kubernetes.io/hostname"]);
        Assert.AreEqual("krustlet", node.Metadata.Labels["type"]);
        Assert.AreEqual("edge", node.Metadata.Labels["team"]);
        Assert.AreEqual("small", node.Metadata.Labels["node.kubernetes.io/instance-type"]);
        Assert.IsFalse(node.Metadata.Labels.ContainsKey("node-role.kubernetes.io/worker"), "a kubelet may not set node-role labels");
        CollectionAssert.AreEquivalent(new[] { "NoSchedule", "NoExecute" }, node.Spec.Taints.Select(t => t.Effect).ToArray());
        Assert.IsTrue(node.Spec.Taints.All(t => t.Key == "kubernetes.io/arch" && t.Value == "wasm32-wasi"));
        Assert.AreEqual("110", node.Status.Capacity["pods"].ToString());
        Assert.AreEqual(Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture), node.Status.Allocatable["cpu"].ToString());
        Assert.AreEqual("wasmtime://50.0.1", node.Status.NodeInfo.ContainerRuntimeVersion);
        Assert.AreEqual(10250, node.Status.DaemonEndpoints.KubeletEndpoint.Port);
        Assert.AreEqual("10.0.0.7", node.Status.Addresses.Single(a => a.Type == "InternalIP").Address);
        CollectionAssert.AreEquivalent(new[] { "Ready", "MemoryPressure", "DiskPressure", "PIDPressure" }, node.Status.Conditions.Select(c => c.Type).ToArray());
        Assert.AreEqual("True", node.Status.Conditions.Single(c => c.Type == "Ready").Status);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task On_restart_an_existing_node_is_brought_up_to_date()
    {
        Api.Put("nodes", JsonNode.Parse(KubernetesJson.Serialize(new V1Node
        {
            ApiVersion = "v1",
            Kind = "Node",
            Metadata = new V1ObjectMeta { Name = "wasm-node", Labels = new Dictionary<string, string> { ["added-by-admin"] = "yes", ["team"] = "old" } },
            Spec = new V1NodeSpec { Taints = [new V1Taint { Key = "stale", Effect = "NoSchedule" }] },
        }))!.AsObject());

        await new NodeAgent(Client, Options).RegisterAsync(TestContext.CancellationToken);

        var node = Node();
        Assert.AreEqual("yes", node.Metadata.Labels["added-by-admin"], "labels others set are kept");
        Assert.AreEqual("edge", node.Metadata.Labels["team"], "our labels are brought up to date");
        Assert.IsFalse(node.Spec.Taints.Any(t => t.Key == "stale"));
        Assert.AreEqual("True", node.Status.Conditions.Single(c => c.Type == "Ready").Status);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Registration_is_retried_while_the_API_server_fails()
    {
        var time = new SignallingTimeProvider();
        Api.Fail("POST", "/api/v1/nodes", 503);
        var retry = time.NextTimer;

        var registering = new NodeAgent(Client, Options, time).RegisterAsync(TestContext.CancellationToken);
        await retry.WaitAsync(TestContext.CancellationToken);
        Assert.IsFalse(registering.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(200));
        await registering;

        Assert.AreEqual("True", Node().Status.Conditions.Single(c => c.Type == "Ready").Status);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task The_lease_is_renewed_every_ten_seconds_and_errors_are_retried()
    {
        var time = new SignallingTimeProvider();
        var agent = new NodeAgent(Client, Options, time);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken);

        var firstWait = time.NextTimer;
        var running = agent.RunAsync(stop.Token);
        await firstWait.WaitAsync(TestContext.CancellationToken);
        var lease = Api.Get("leases", NodeAgent.LeaseNamespace, "wasm-node")!;
        Assert.AreEqual("wasm-node", lease["spec"]!["holderIdentity"]!.GetValue<string>());
        Assert.AreEqual(40, lease["spec"]!["leaseDurationSeconds"]!.GetValue<int>());
        var firstRenew = lease["spec"]!["renewTime"]!.GetValue<string>();

        // The next renewal fails once (a 500); the agent retries quickly and carries on.
        Api.Fail("GET", "/leases/wasm-node", 500);
        var retryWait = time.NextTimer;
        time.Advance(TimeSpan.FromSeconds(10));
        await retryWait.WaitAsync(TestContext.CancellationToken);
        Assert.AreEqual(1, agent.Renewals);
        var renewedWait = time.NextTimer;
        time.Advance(TimeSpan.FromMilliseconds(200));
        await renewedWait.WaitAsync(TestContext.CancellationToken);

        Assert.AreEqual(2, agent.Renewals);
        Assert.AreNotEqual(firstRenew, Api.Get("leases", NodeAgent.LeaseNamespace, "wasm-node")!["spec"]!["renewTime"]!.GetValue<string>());
        await stop.CancelAsync();
        await running;
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_pressure_condition_that_turns_true_is_written_at_the_next_renewal_with_its_transition_time()
    {
        var time = new SignallingTimeProvider();
        var signals = new Signals();
        using var pressure = new Krustlet.Stages.Pressure.NodePressure(signals, new Krustlet.Stages.Pressure.NodePressureOptions(), time);
        pressure.Evaluate();
        var agent = new NodeAgent(Client, Options with { Pressure = pressure }, time);
        await agent.RegisterAsync(TestContext.CancellationToken);
        Assert.AreEqual("False", Node().Status.Conditions.Single(c => c.Type == "DiskPressure").Status);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken);
        var firstWait = time.NextTimer;
        var running = agent.RunAsync(stop.Token);
        await firstWait.WaitAsync(TestContext.CancellationToken);

        signals.DiskAvailable = 1L << 30; // 1 GiB of 100: under nodefs.available<10%
        pressure.Evaluate();
        var turnedAt = time.GetUtcNow();
        var next = time.NextTimer;
        time.Advance(TimeSpan.FromSeconds(10));
        await next.WaitAsync(TestContext.CancellationToken);

        var disk = Node().Status.Conditions.Single(c => c.Type == "DiskPressure");
        Assert.AreEqual("True", disk.Status, "written at the renewal, not 5 minutes later");
        Assert.AreEqual("KubeletHasDiskPressure", disk.Reason);
        StringAssert.StartsWith(disk.Message, "the node has nodefs.available 1073741824 of 107374182400 bytes");
        Assert.AreEqual(turnedAt.UtcDateTime, disk.LastTransitionTime!.Value.ToUniversalTime(), "the transition time is when it turned, not each heartbeat");
        Assert.AreEqual("False", Node().Status.Conditions.Single(c => c.Type == "MemoryPressure").Status);
        await stop.CancelAsync();
        await running;
    }

    private sealed class Signals : Krustlet.Stages.Pressure.INodeSignalSource
    {
        public long DiskAvailable { get; set; } = 50L << 30;

        public Krustlet.Stages.Pressure.NodeSignals Read() =>
            new(new(4L << 30, 8L << 30), new(DiskAvailable, 100L << 30), null, new(DiskAvailable, 100L << 30), null, null);
    }
}
