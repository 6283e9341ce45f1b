using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace Krustlet.Host.Tests;

/// <summary><c>krustlet node</c> against the API emulator and a real registry.</summary>
[TestClass]
public sealed class NodeCommandTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task The_node_registers_runs_a_pod_from_a_registry_reports_it_and_stops_cleanly()
    {
        await using var api = await ApiEmulator.StartAsync(TestContext.CancellationToken);
        await using var registry = await LocalRegistry.StartAsync(basicAuth: false, TestContext.CancellationToken);
        var dir = Directory.CreateTempSubdirectory("krustlet-node-").FullName;
        var kubeconfig = Path.Combine(dir, "kubeconfig");
        api.WriteKubeconfig(kubeconfig);
        var image = $"{registry.Host}/node-test/hello:v1";
        using (var pushOutput = new StringWriter())
        {
            Assert.AreEqual(0, await Program.BuildCommand(pushOutput).Parse(["image", "push", WasmFixtures.C("hello"), image]).InvokeAsync(cancellationToken: TestContext.CancellationToken), pushOutput.ToString());
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken);
        using var output = new StringWriter();
        var node = Program.BuildCommand(output).Parse(["node", "--kubeconfig", kubeconfig, "--node-name", "wasm-node", "--node-ip", "10.0.0.3", "--data-dir", Path.Combine(dir, "data"), "--address", "127.0.0.1", "--port", "0"]).InvokeAsync(cancellationToken: stop.Token);

        await api.WaitForAsync("leases", "kube-node-lease", "wasm-node", _ => true, TestContext.CancellationToken);
        api.Put("pods", JsonNode.Parse(KubernetesJson.Serialize(new V1Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new V1ObjectMeta { Name = "hello", NamespaceProperty = "default" },
            Spec = new V1PodSpec
            {
                NodeName = "wasm-node",
                RestartPolicy = "Never",
                Containers = [new V1Container { Name = "main", Image = image }],
                Tolerations = [new V1Toleration { Key = "kubernetes.io/arch", OperatorProperty = "Equal", Value = "wasm32-wasi" }],
            },
        }))!.AsObject());
        await api.WaitForAsync("pods", "default", "hello", p => p["status"]?["phase"]?.GetValue<string>() == "Succeeded", TestContext.CancellationToken);

        var registered = KubernetesJson.Deserialize<V1Node>(api.Get("nodes", string.Empty, "wasm-node")!.ToJsonString());
        Assert.AreEqual("wasm32-wasi", registered.Metadata.Labels["kubernetes.io/arch"]);
        var pod = KubernetesJson.Deserialize<V1Pod>(api.Get("pods", "default", "hello")!.ToJsonString());
        Assert.AreEqual("Completed", pod.Status.ContainerStatuses[0].State.Terminated.Reason);
        Assert.AreEqual("10.0.0.3", pod.Status.PodIP);
        Assert.IsTrue(api.All("events").Any(e => e["reason"]!.GetValue<string>() == "Pulled"));

        await stop.CancelAsync();
        Assert.AreEqual(0, await node);
        StringAssert.Contains(output.ToString(), "node wasm-node registered; watching its pods");
        StringAssert.Contains(output.ToString(), "node wasm-node stopped:");
        Directory.Delete(dir, recursive: true);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Under_disk_pressure_the_node_says_so_and_refuses_a_new_pod_as_Evicted()
    {
        await using var api = await ApiEmulator.StartAsync(TestContext.CancellationToken);
        var dir = Directory.CreateTempSubdirectory("krustlet-node-").FullName;
        var kubeconfig = Path.Combine(dir, "kubeconfig");
        api.WriteKubeconfig(kubeconfig);

        // A threshold every real filesystem is under: the node is under DiskPressure from its first reading.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken);
        using var output = new StringWriter();
        var node = Program.BuildCommand(output).Parse(["node", "--kubeconfig", kubeconfig, "--node-name", "wasm-node", "--node-ip", "10.0.0.3", "--data-dir", Path.Combine(dir, "data"), "--address", "127.0.0.1", "--port", "0", "--page-port", "-1", "--eviction-hard", "nodefs.available<100%"]).InvokeAsync(cancellationToken: stop.Token);

        await api.WaitForAsync("leases", "kube-node-lease", "wasm-node", _ => true, TestContext.CancellationToken);
        var registered = KubernetesJson.Deserialize<V1Node>(api.Get("nodes", string.Empty, "wasm-node")!.ToJsonString());
        var disk = registered.Status.Conditions.Single(c => c.Type == "DiskPressure");
        Assert.AreEqual("True", disk.Status);
        Assert.AreEqual("KubeletHasDiskPressure", disk.Reason);
        StringAssert.EndsWith(disk.Message, "bytes, under its eviction threshold nodefs.available<100%");
        Assert.AreEqual("False", registered.Status.Conditions.Single(c => c.Type == "MemoryPressure").Status);

        api.Put("pods", JsonNode.Parse(KubernetesJson.Serialize(new V1Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new V1ObjectMeta { Name = "refused", NamespaceProperty = "default" },
            Spec = new V1PodSpec
            {
                NodeName = "wasm-node",
                RestartPolicy = "Never",
                Containers = [new V1Container { Name = "main", Image = "example.com/hello:v1", Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["memory"] = new("16Mi") } } }],
                Tolerations = [new V1Toleration { Key = "kubernetes.io/arch", OperatorProperty = "Equal", Value = "wasm32-wasi" }],
            },
        }))!.AsObject());
        await api.WaitForAsync("pods", "default", "refused", p => p["status"]?["phase"]?.GetValue<string>() == "Failed", TestContext.CancellationToken);
        var refused = api.Get("pods", "default", "refused")!;

        Assert.AreEqual("Evicted", refused["status"]!["reason"]!.GetValue<string>());
        Assert.AreEqual("Admission: The node had condition: [DiskPressure]. ", refused["status"]!["message"]!.GetValue<string>());
        await stop.CancelAsync();
        Assert.AreEqual(0, await node);
        Directory.Delete(dir, recursive: true);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task A_restarted_node_readopts_its_pods_in_the_api_and_forgets_those_deleted_while_it_was_down()
    {
        await using var api = await ApiEmulator.StartAsync(TestContext.CancellationToken);
        await using var registry = await LocalRegistry.StartAsync(basicAuth: false, TestContext.CancellationToken);
        var dir = Directory.CreateTempSubdirectory("krustlet-node-restart-").FullName;
        var kubeconfig = Path.Combine(dir, "kubeconfig");
        api.WriteKubeconfig(kubeconfig);
        var dataDir = Path.Combine(dir, "data");
        var ticker = $"{registry.Host}/node-test/ticker:v1";
        var hello = $"{registry.Host}/node-test/hello:v1";
        foreach (var (module, image) in new[] { (WasmFixtures.C("ticker"), ticker), (WasmFixtures.C("hello"), hello) })
        {
            using var pushOutput = new StringWriter();
            Assert.AreEqual(0, await Program.BuildCommand(pushOutput).Parse(["image", "push", module, image]).InvokeAsync(cancellationToken: TestContext.CancellationToken), pushOutput.ToString());
        }

        string[] arguments = ["node", "--kubeconfig", kubeconfig, "--node-name", "wasm-node", "--node-ip", "127.0.0.1", "--data-dir", dataDir, "--address", "127.0.0.1", "--port", "0"];
        JsonObject Pod(string name, string image, string restartPolicy, string[] args) => JsonNode.Parse(KubernetesJson.Serialize(new V1Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
            Spec = new V1PodSpec
            {
                NodeName = "wasm-node",
                RestartPolicy = restartPolicy,
                Containers = [new V1Container { Name = "main", Image = image, Args = args }],
            },
        }))!.AsObject();
        static V1Pod Read(ApiEmulator api, string name) => KubernetesJson.Deserialize<V1Pod>(api.Get("pods", "default", name)!.ToJsonString());

        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken))
        {
            using var output = new StringWriter();
            var node = Program.BuildCommand(output).Parse(arguments).InvokeAsync(cancellationToken: stop.Token);
            await api.WaitForAsync("leases", "kube-node-lease", "wasm-node", _ => true, TestContext.CancellationToken);
            api.Put("pods", Pod("server", ticker, "Always", ["100000"]));
            api.Put("pods", Pod("done", hello, "Never", []));
            await api.WaitForAsync("pods", "default", "server", p => p["status"]?["containerStatuses"]?[0]?["state"]?["running"] is not null, TestContext.CancellationToken);
            await api.WaitForAsync("pods", "default", "done", p => p["status"]?["phase"]?.GetValue<string>() == "Succeeded", TestContext.CancellationToken);

            await stop.CancelAsync();
            Assert.AreEqual(0, await node, output.ToString());
        }

        var suspended = Read(api, "server");
        Assert.AreEqual("Running", suspended.Status.Phase, "the agent stopping is not the pod failing");
        Assert.AreEqual(137, suspended.Status.ContainerStatuses[0].State.Terminated.ExitCode);
        var doneUid = Read(api, "done").Metadata.Uid;
        Assert.IsTrue(api.Remove("pods", "default", "done"), "deleted while the agent is down");

        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken))
        {
            using var output = new StringWriter();
            var node = Program.BuildCommand(output).Parse(arguments).InvokeAsync(cancellationToken: stop.Token);
            await api.WaitForAsync("pods", "default", "server", p => p["status"]?["containerStatuses"]?[0]?["restartCount"]?.GetValue<int>() == 1 && p["status"]?["containerStatuses"]?[0]?["state"]?["running"] is not null, TestContext.CancellationToken);
            var readopted = Read(api, "server").Status.ContainerStatuses[0];
            Assert.AreEqual(137, readopted.LastState.Terminated.ExitCode);
            Assert.AreEqual($"wasm://{Read(api, "server").Metadata.Uid}/main/1", readopted.ContainerID);
            Assert.IsFalse(File.Exists(Path.Combine(dataDir, "state", $"{doneUid}.json")));
            Assert.IsFalse(Directory.EnumerateDirectories(Path.Combine(dataDir, "logs")).Any(d => d.EndsWith(doneUid, StringComparison.Ordinal)));
            await stop.CancelAsync();
            Assert.AreEqual(0, await node, output.ToString());
        }

        Directory.Delete(dir, recursive: true);
    }
}
