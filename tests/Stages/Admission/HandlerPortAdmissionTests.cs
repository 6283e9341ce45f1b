using System.Collections.Concurrent;
using System.Threading.Channels;
using k8s.Models;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.Admission;
using Krustlet.Stages.Tests.ImagePull;

namespace Krustlet.Stages.Tests.Admission;

/// <summary>
/// HTTP handler ports (a container port named <c>http</c>) are node ports: admission holds each for the
/// pod that got it until the pod's teardown, refuses a second holder with the kubelet's NodePorts reason,
/// keeps the agent's own ports, and refuses handler ports, probes and hooks the node cannot serve.
/// </summary>
[TestClass]
public sealed class HandlerPortAdmissionTests
{
    private const string NodePortsMessage = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports: ";

    private static readonly NodeAllocatable Node = new("wasm-node", MaxPods: 110, new ResourceQuantity("4"), new ResourceQuantity("4Gi"));

    public TestContext TestContext { get; set; } = null!;

    private static V1Container Container(string name, int? port = null, string portName = "http") => new()
    {
        Name = name,
        Image = "x",
        Ports = port is { } p ? [new V1ContainerPort { Name = portName, ContainerPort = p }] : null,
    };

    private static V1Pod Pod(string name, params V1Container[] containers) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default", Uid = $"uid-{name}" },
        Spec = new V1PodSpec { NodeName = "wasm-node", Containers = containers },
    };

    private static V1Pod Web(string name, int port) => Pod(name, Container("web", port));

    /// <summary>The stage inside a one-stage pipeline, so deletions go through its teardown as in the agent.</summary>
    private sealed class Harness : IResultSink<V1Pod>, IAsyncDisposable
    {
        private readonly Channel<WorkResult<V1Pod>> _results = Channel.CreateUnbounded<WorkResult<V1Pod>>();
        private readonly StagePipeline<V1Pod> _pipeline;

        public Harness(AdmissionStage stage)
        {
            Stage = stage;
            _pipeline = new PipelineBuilder<V1Pod>().AddStage(stage).WithSink("Sink", this)
                .Build(new PipelineOptions(new Dictionary<string, StageOptions> { [stage.Name] = new(4, 16), ["Sink"] = new(1, 16) }));
        }

        public AdmissionStage Stage { get; }

        public ValueTask WriteAsync(WorkResult<V1Pod> result, CancellationToken cancellationToken) => _results.Writer.WriteAsync(result, cancellationToken);

        public async Task<StageFailure?> AdmitAsync(V1Pod pod, CancellationToken ct)
        {
            await _pipeline.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), ct);
            var result = await _results.Reader.ReadAsync(ct);
            Assert.AreEqual(pod.Metadata.Uid, result.Key);
            return result.Failure;
        }

        /// <summary>Submits every pod before reading any result, so the stage's four workers admit them at once.</summary>
        public async Task<IReadOnlyList<StageFailure?>> AdmitAllAsync(IReadOnlyList<V1Pod> pods, CancellationToken ct)
        {
            foreach (var pod in pods)
            {
                await _pipeline.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), ct);
            }

            var failures = new List<StageFailure?>();
            for (var i = 0; i < pods.Count; i++)
            {
                failures.Add((await _results.Reader.ReadAsync(ct)).Failure);
            }

            return failures;
        }

        public async Task DeleteAsync(V1Pod pod, CancellationToken ct)
        {
            await _pipeline.SubmitAsync(PipelineEvent<V1Pod>.Delete(pod.Metadata.Uid, pod), ct);
            var result = await _results.Reader.ReadAsync(ct);
            Assert.AreEqual(EventKind.Delete, result.Kind);
            Assert.IsNull(result.Failure);
        }

        public async ValueTask DisposeAsync() => await _pipeline.DisposeAsync();
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_second_pod_on_a_held_port_is_refused_with_NodePorts_naming_the_port_and_its_holder()
    {
        var ct = TestContext.CancellationToken;
        await using var harness = new Harness(new AdmissionStage(Node));

        Assert.IsNull(await harness.AdmitAsync(Web("first", 8080), ct));
        var refused = await harness.AdmitAsync(Web("second", 8080), ct);
        Assert.IsNull(await harness.AdmitAsync(Web("third", 8081), ct), "another port is free");
        Assert.IsNull(await harness.AdmitAsync(Pod("plain", Container("main", 8080, portName: "metrics")), ct), "only a port named http is a handler port");

        Assert.IsNotNull(refused);
        Assert.AreEqual("NodePorts", refused.Reason);
        Assert.AreEqual(NodePortsMessage + "port 8080 (spec.containers[web].ports[http]) is held by pod default/first (spec.containers[web].ports[http])", refused.Message);
        Assert.AreEqual(3, harness.Stage.Admitted);
        Assert.AreEqual(2, harness.Stage.HeldPorts);
        Assert.IsNull(await harness.AdmitAsync(Web("first", 8080), ct), "an update of the holder is admitted again");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Two_containers_of_one_pod_on_one_port_are_refused_and_hold_nothing()
    {
        var ct = TestContext.CancellationToken;
        await using var harness = new Harness(new AdmissionStage(Node));

        var refused = await harness.AdmitAsync(Pod("twins", Container("a", 9000), Container("b", 9000)), ct);

        Assert.AreEqual("NodePorts", refused?.Reason);
        Assert.AreEqual(NodePortsMessage + "port 9000 is requested by both spec.containers[a].ports[http] and spec.containers[b].ports[http]", refused?.Message);
        Assert.AreEqual(0, harness.Stage.Admitted);
        Assert.AreEqual(0, harness.Stage.HeldPorts);
        Assert.IsNull(await harness.AdmitAsync(Pod("pair", Container("a", 9000), Container("b", 9001)), ct), "two handler ports of one pod");
        Assert.AreEqual(2, harness.Stage.HeldPorts);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_port_is_released_at_its_pods_teardown_and_can_be_admitted_again()
    {
        var ct = TestContext.CancellationToken;
        await using var harness = new Harness(new AdmissionStage(Node));
        var first = Web("first", 8080);
        Assert.IsNull(await harness.AdmitAsync(first, ct));
        Assert.AreEqual("NodePorts", (await harness.AdmitAsync(Web("second", 8080), ct))?.Reason);

        await harness.DeleteAsync(first, ct);

        Assert.AreEqual(0, harness.Stage.HeldPorts);
        Assert.IsNull(await harness.AdmitAsync(Web("second", 8080), ct), "the port is free once its holder is torn down");
        Assert.AreEqual("NodePorts", (await harness.AdmitAsync(Web("first", 8080), ct))?.Reason, "now the first pod finds it held");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task The_agents_own_ports_are_refused_naming_the_setting_that_chose_them()
    {
        var ct = TestContext.CancellationToken;
        var reserved = new ReservedPorts().Reserve(10250, "Server:Port").Reserve(10265, "Page:Port").Reserve(0, "Ignored:Port");
        await using var harness = new Harness(new AdmissionStage(Node, new AdmissionOptions { ReservedPorts = reserved }));

        var api = await harness.AdmitAsync(Web("api", 10250), ct);
        var page = await harness.AdmitAsync(Web("page", 10265), ct);
        reserved.Reserve(40123, "Server:Port"); // a port 0 setting, once bound
        var bound = await harness.AdmitAsync(Web("bound", 40123), ct);

        Assert.AreEqual("NodePorts", api?.Reason);
        Assert.AreEqual(NodePortsMessage + "port 10250 (spec.containers[web].ports[http]) is where the node agent itself listens (Server:Port)", api?.Message);
        Assert.AreEqual(NodePortsMessage + "port 10265 (spec.containers[web].ports[http]) is where the node agent itself listens (Page:Port)", page?.Message);
        StringAssert.EndsWith(bound?.Message, "port 40123 (spec.containers[web].ports[http]) is where the node agent itself listens (Server:Port)");
        CollectionAssert.AreEqual(new[] { (10250, "Server:Port"), (10265, "Page:Port"), (40123, "Server:Port") }, reserved.All.ToArray());
        Assert.AreEqual(0, harness.Stage.Admitted);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Of_pods_admitted_at_once_on_one_port_exactly_one_gets_it()
    {
        var ct = TestContext.CancellationToken;
        for (var round = 0; round < 200; round++)
        {
            var stage = new AdmissionStage(Node);
            using var start = new Barrier(2);
            var outcomes = new ConcurrentBag<StageOutcome>();
            var racers = Enumerable.Range(0, 2).Select(i => Task.Factory.StartNew(
                () =>
                {
                    var pod = Web($"racer-{i}", 8080);
                    start.SignalAndWait(ct);
                    outcomes.Add(stage.Admit(pod.Metadata.Uid, pod));
                },
                ct,
                TaskCreationOptions.LongRunning,
                TaskScheduler.Default)).ToArray();
            await Task.WhenAll(racers);

            Assert.AreEqual(1, outcomes.Count(o => o.Kind == StageOutcomeKind.Continue), $"round {round}");
            Assert.AreEqual(1, outcomes.Count(o => o.Reason == "NodePorts"), $"round {round}");
            Assert.AreEqual(1, stage.Admitted);
            Assert.AreEqual(1, stage.HeldPorts);
        }

        // And through the pipeline, whose admission stage runs four items at once.
        await using var harness = new Harness(new AdmissionStage(Node));
        var failures = await harness.AdmitAllAsync([.. Enumerable.Range(0, 8).Select(i => Web($"pod-{i}", 8080))], ct);
        Assert.AreEqual(1, failures.Count(f => f is null));
        Assert.AreEqual(7, failures.Count(f => f?.Reason == "NodePorts"));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow("port0", "spec.containers[web].ports[http].containerPort: 0 is not a TCP port (1-65535); the node agent listens on it for the HTTP handler")]
    [DataRow("port70000", "spec.containers[web].ports[http].containerPort: 70000 is not a TCP port (1-65535)")]
    [DataRow("udp", "spec.containers[web].ports[http].protocol: an HTTP handler port must be TCP, not UDP")]
    [DataRow("otherHostPort", "spec.containers[web].ports[http].hostPort: the node agent serves the HTTP handler on the node's port 8080 (its containerPort) and cannot map it to 80; set hostPort to 8080 or leave it out")]
    [DataRow("initHostPort", "spec.initContainers[setup].ports[8080].hostPort: a WebAssembly sandbox cannot bind host ports")]
    [DataRow("livenessExec", "spec.containers[web].livenessProbe.exec: a WebAssembly container has no shell or processes to exec a probe command; use httpGet or tcpSocket")]
    [DataRow("readinessGrpc", "spec.containers[web].readinessProbe.grpc: gRPC probes are not implemented by this node; use httpGet or tcpSocket")]
    [DataRow("startupExec", "spec.containers[web].startupProbe.exec: ")]
    [DataRow("initExec", "spec.initContainers[setup].livenessProbe.exec: ")]
    [DataRow("postStartExec", "spec.containers[web].lifecycle.postStart.exec: a WebAssembly container has no shell or processes to exec a hook command")]
    [DataRow("preStopExec", "spec.containers[web].lifecycle.preStop.exec: ")]
    [DataRow("badNetwork", "metadata.annotations[krustlet.dev/network]: unsupported value \"all\": use \"outbound\" to give the pod's components outbound network, or \"none\"")]
    public async Task Handler_ports_probes_and_hooks_the_node_cannot_serve_are_refused_by_field(string change, string message)
    {
        var pod = Web("p", 8080);
        var web = pod.Spec.Containers[0];
        var port = web.Ports[0];
        var exec = new V1ExecAction { Command = ["cat", "/tmp/healthy"] };
        var setup = new V1Container { Name = "setup", Image = "x" };
        switch (change)
        {
            case "port0": port.ContainerPort = 0; break;
            case "port70000": port.ContainerPort = 70000; break;
            case "udp": port.Protocol = "UDP"; break;
            case "otherHostPort": port.HostPort = 80; break;
            case "initHostPort": setup.Ports = [new V1ContainerPort { Name = "http", ContainerPort = 8080, HostPort = 8080 }]; pod.Spec.InitContainers = [setup]; break;
            case "livenessExec": web.LivenessProbe = new V1Probe { Exec = exec }; break;
            case "readinessGrpc": web.ReadinessProbe = new V1Probe { Grpc = new V1GRPCAction { Port = 9090 } }; break;
            case "startupExec": web.StartupProbe = new V1Probe { Exec = exec }; break;
            case "initExec": setup.LivenessProbe = new V1Probe { Exec = exec }; pod.Spec.InitContainers = [setup]; break;
            case "postStartExec": web.Lifecycle = new V1Lifecycle { PostStart = new V1LifecycleHandler { Exec = exec } }; break;
            case "preStopExec": web.Lifecycle = new V1Lifecycle { PreStop = new V1LifecycleHandler { Exec = exec } }; break;
            default: pod.Metadata.Annotations = new Dictionary<string, string> { [OutboundNetwork.Annotation] = "all" }; break;
        }

        var stage = new AdmissionStage(Node);
        var outcome = await StageItem.ForAsync(pod, stage, TestContext.CancellationToken);

        Assert.AreEqual("UnsupportedPodSpec", outcome.Reason);
        StringAssert.StartsWith(outcome.Message, message);
        Assert.AreEqual(0, stage.HeldPorts);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_hostPort_equal_to_the_handlers_containerPort_and_http_and_tcp_probes_are_admitted()
    {
        var pod = Web("p", 8080);
        var web = pod.Spec.Containers[0];
        web.Ports[0].HostPort = 8080;
        web.Ports[0].Protocol = "TCP";
        web.ReadinessProbe = new V1Probe { HttpGet = new V1HTTPGetAction { Port = "http", Path = "/healthz" } };
        web.LivenessProbe = new V1Probe { TcpSocket = new V1TCPSocketAction { Port = 8080 } };
        pod.Metadata.Annotations = new Dictionary<string, string> { [OutboundNetwork.Annotation] = OutboundNetwork.None };

        var stage = new AdmissionStage(Node);
        var outcome = await StageItem.ForAsync(pod, stage, TestContext.CancellationToken);

        Assert.AreEqual(StageOutcomeKind.Continue, outcome.Kind, outcome.Message);
        Assert.AreEqual(1, stage.HeldPorts);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_pod_asking_for_outbound_network_is_refused_where_the_node_forbids_it()
    {
        var pod = Pod("net", Container("main"));
        pod.Metadata.Annotations = new Dictionary<string, string> { [OutboundNetwork.Annotation] = OutboundNetwork.Outbound };

        var forbidden = await StageItem.ForAsync(pod, new AdmissionStage(Node, new AdmissionOptions { AllowOutboundNetwork = false }), TestContext.CancellationToken);
        var allowed = await StageItem.ForAsync(pod, new AdmissionStage(Node), TestContext.CancellationToken);

        Assert.AreEqual("NetworkForbidden", forbidden.Reason);
        Assert.AreEqual("metadata.annotations[krustlet.dev/network]: this node forbids outbound network for pods (Wasm:AllowNetwork is false)", forbidden.Message);
        Assert.AreEqual(StageOutcomeKind.Continue, allowed.Kind, "allowed by default");
    }
}
