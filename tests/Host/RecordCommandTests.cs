using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Krustlet.Pipeline.Events;
using Krustlet.Pipeline.Replay;
using Krustlet.Stages.Kubernetes;
using Krustlet.Stages.PodEvents;

namespace Krustlet.Host.Tests;

[TestClass]
public sealed class RecordCommandTests
{
    public TestContext TestContext { get; set; } = null!;

    private static JsonObject PodJson(string name, string node) => JsonNode.Parse(KubernetesJson.Serialize(new V1Pod
    {
        ApiVersion = "v1",
        Kind = "Pod",
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1PodSpec { NodeName = node, Containers = [new V1Container { Name = "main", Image = "r/app:1" }] },
    }))!.AsObject();

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_recorded_stream_replays_as_the_same_pod_events()
    {
        await using var api = await ApiEmulator.StartAsync(TestContext.CancellationToken);
        var dir = Directory.CreateTempSubdirectory("krustlet-record-").FullName;
        var kubeconfig = Path.Combine(dir, "config");
        api.WriteKubeconfig(kubeconfig);
        api.Put("pods", PodJson("existing", "wasm-node"));
        api.Put("pods", PodJson("elsewhere", "other-node"));
        var output = Path.Combine(dir, "stream.ndjson");
        using var stdout = new StringWriter();

        var recording = Program.BuildCommand(stdout).Parse(["record", "--kubeconfig", kubeconfig, "--node-name", "wasm-node", "--output", output, "--count", "3"]).InvokeAsync(cancellationToken: TestContext.CancellationToken);
        await api.WatchesOpened(1).WaitAsync(TestContext.CancellationToken);
        api.Put("pods", PodJson("created", "wasm-node"));
        api.Remove("pods", "default", "existing");
        Assert.AreEqual(0, await recording);

        var source = WatchStreamReplaySource<V1Pod>.FromFile(output, PodWatchDecoder.Instance);
        var events = await source.ReadAsync(TestContext.CancellationToken).ToListAsync(TestContext.CancellationToken);
        CollectionAssert.AreEqual(
            new[] { (EventKind.Upsert, "existing"), (EventKind.Upsert, "created"), (EventKind.Delete, "existing") },
            events.Select(e => (e.Kind, e.Value!.Metadata.Name)).ToArray());
        Assert.IsEmpty(source.Problems);
        StringAssert.StartsWith(stdout.ToString(), $"recorded 3 events to {output}");
        Directory.Delete(dir, recursive: true);
    }

    [TestMethod]
    public void The_connection_comes_from_the_flag_then_KUBECONFIG_then_the_home_config()
    {
        var dir = Directory.CreateTempSubdirectory("krustlet-kubeconfig-").FullName;
        string Write(string name, string server)
        {
            var path = Path.Combine(dir, name);
            File.WriteAllText(path, $"apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{server}\"}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n");
            return path;
        }

        var flag = Write("flag", "http://flag:1");
        var fromEnvironment = Write("env", "http://env:1");
        Directory.CreateDirectory(Path.Combine(dir, ".kube"));
        Write(Path.Combine(".kube", "config"), "http://home:1");

        Assert.AreEqual("http://flag:1/", new Uri(KubernetesConnection.Load(flag, _ => fromEnvironment, dir).Host).ToString());
        Assert.AreEqual("http://env:1/", new Uri(KubernetesConnection.Load(null, _ => fromEnvironment, dir).Host).ToString());
        Assert.AreEqual("http://home:1/", new Uri(KubernetesConnection.Load(null, _ => null, dir).Host).ToString());
        var missing = Assert.ThrowsExactly<InvalidOperationException>(() => KubernetesConnection.Load(Path.Combine(dir, "nope"), _ => null, dir));
        StringAssert.Contains(missing.Message, "--kubeconfig");
        var none = Assert.ThrowsExactly<InvalidOperationException>(() => KubernetesConnection.Load(null, _ => null, Path.Combine(dir, "empty-home")));
        StringAssert.StartsWith(none.Message, "no cluster connection found; tried ~/.kube/config");
        Directory.Delete(dir, recursive: true);
    }
}
