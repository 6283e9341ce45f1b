using System.Net;
using System.Net.Sockets;
using k8s.Models;
using Krustlet.Stages.Admission;
using Krustlet.Stages.Compile;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.Run;

/// <summary>
/// Outbound network for WASI 0.2 components (<c>krustlet.dev/network: outbound</c>), with a real
/// component that resolves a name and opens a TCP connection to a listener of the test's: off by
/// default, on with the annotation as far as Wasmtime 50's C API lets it go (name lookups; sockets
/// stay refused by the library), and refused at admission where the node forbids it.
/// </summary>
[TestClass]
public sealed class ComponentNetworkTests
{
    private static readonly WasmEngineHost Host = new(new WasmEngineOptions());

    private string _root = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void CreateRoot() => _root = Directory.CreateTempSubdirectory("krustlet-net-").FullName;

    [TestCleanup]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private static string Code(int code) => code.ToString("00", System.Globalization.CultureInfo.InvariantCulture);

    private async Task<(ContainerExit Exit, string[] Stdout)> RunAsync(string component, bool network)
    {
        var ct = TestContext.CancellationToken;
        var artifact = await new CompileCache(Host, Path.Combine(_root, "cache")).GetAsync(WasmFixtures.Digest(component), component, ct);
        Assert.AreEqual(WasmBinaryKind.Component, artifact.Kind);
        var log = Path.Combine(_root, "logs", network ? "on" : "off", "0.log");
        var launch = new ContainerLaunch("main", artifact, ["main"], [], [], null, log, LogRotationOptions.Default) { OutboundNetwork = network };
        using var pool = new ExecutorPool(Host, 2);
        var exit = await pool.RunAsync(launch, new ContainerControl(TimeProvider.System), ct);
        return (exit, [.. File.ReadAllLines(log).Select(l => l.Split(' ', 4)).Where(p => p[1] == "stdout").Select(p => p[3])]);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Without_the_annotation_a_component_can_neither_resolve_names_nor_open_sockets()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();

        var (exit, stdout) = await RunAsync(SocketComponent.ResolvingThenConnecting(((IPEndPoint)listener.LocalEndpoint).Port), network: false);

        CollectionAssert.AreEqual(
            new[] { $"resolve-addresses failed: error-code {Code(SocketComponent.PermanentResolverFailure)}", $"create-tcp-socket failed: error-code {Code(SocketComponent.AccessDenied)}" },
            stdout);
        Assert.AreEqual(ExitKind.Exited, exit.Kind);
        Assert.AreEqual(1, exit.ExitCode, "the guest reports the failure");
        Assert.IsFalse(listener.Pending(), "nothing connected");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task With_the_annotation_a_component_resolves_names_but_Wasmtime_50_still_refuses_its_sockets()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();

        var (exit, stdout) = await RunAsync(SocketComponent.ResolvingThenConnecting(((IPEndPoint)listener.LocalEndpoint).Port), network: true);

        Assert.AreEqual("resolved localhost", stdout[0], "wasi_config_allow_ip_name_lookup reached the component's WASI context");

        // Since Wasmtime #13936 (in 50) WASI refuses TCP and UDP sockets unless the embedder allows them
        // (WasiCtxBuilder::allow_tcp), which the C API 50 does not export: wasi_config_inherit_network
        // passes every address, but no socket is ever created. When this assertion fails, the library
        // lets sockets through: bind the new switch in ComponentWasi and expect "connected" here.
        Assert.AreEqual($"create-tcp-socket failed: error-code {Code(SocketComponent.AccessDenied)}", stdout[1]);
        Assert.AreEqual(1, exit.ExitCode);
        Assert.IsFalse(listener.Pending());
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task The_annotation_reaches_the_component_through_the_pipeline_and_a_forbidding_node_refuses_it()
    {
        var ct = TestContext.CancellationToken;
        var component = SocketComponent.ResolvingThenConnecting(9); // the discard port: nothing listens, and nothing connects
        var node = new NodeAllocatable("wasm-node", 110, new ResourceQuantity("2"), new ResourceQuantity("1Gi"));
        V1Pod Pod(string name, string? network)
        {
            var pod = RunHarness.Pod(name, images: ["sockets"]);
            if (network is not null)
            {
                pod.Metadata.Annotations = new Dictionary<string, string> { [OutboundNetwork.Annotation] = network };
            }

            return pod;
        }

        string[] Stdout(RunHarness harness, V1Pod pod) =>
            [.. File.ReadAllLines(Path.Combine(harness.LogRoot, $"default_{pod.Metadata.Name}_{pod.Metadata.Uid}", "main", "0.log")).Select(l => l.Split(' ', 4)[3])];

        var images = new Dictionary<string, string> { ["sockets"] = component };
        await using (var harness = new RunHarness(images, admission: new AdmissionStage(node)))
        {
            var on = Pod("on", OutboundNetwork.Outbound);
            var off = Pod("off", null);
            await harness.SubmitAsync(on, ct);
            await harness.SubmitAsync(off, ct);

            await harness.WaitForAsync(on, s => s.Phase == PodPhase.Failed, ct);
            await harness.WaitForAsync(off, s => s.Phase == PodPhase.Failed, ct);
            Assert.AreEqual("resolved localhost", Stdout(harness, on)[0]);
            StringAssert.StartsWith(Stdout(harness, off)[0], "resolve-addresses failed");
        }

        await using (var forbidding = new RunHarness(images, admission: new AdmissionStage(node, new AdmissionOptions { AllowOutboundNetwork = false })))
        {
            var asking = Pod("asking", OutboundNetwork.Outbound);
            await forbidding.SubmitAsync(asking, ct);

            var refused = await forbidding.Writer.WaitForAsync(asking.Metadata.Uid, r => r.Kind == PodReportKind.Failed, ct);
            Assert.AreEqual(KubeletReasons.NetworkForbidden, refused.Reason);
            Assert.AreEqual("Admission: metadata.annotations[krustlet.dev/network]: this node forbids outbound network for pods (Wasm:AllowNetwork is false)", refused.Message);
            Assert.IsFalse(Directory.Exists(Path.Combine(forbidding.LogRoot, "default_asking_uid-asking")), "it never ran");
        }
    }
}
