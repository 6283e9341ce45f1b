using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Krustlet.Stages.Admission;
using Krustlet.Stages.Compile;
using Krustlet.Stages.Kubernetes;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;
using Krustlet.Stages.VolumeSetup;

namespace Krustlet.Stages.Tests.Kubernetes;

/// <summary>The agent's pieces against the API emulator: watch in, real stages, status and deletion out.</summary>
[TestClass]
public sealed class AgentIntegrationTests
{
    private static readonly WasmEngineHost Host = new(new WasmEngineOptions());

    public TestContext TestContext { get; set; } = null!;

    /// <summary>Writes through to the API and lets the test wait for a report that was written.</summary>
    private sealed class Observed(IPodReportWriter inner) : IPodReportWriter
    {
        public ObservingWriter Seen { get; } = new();

        public async ValueTask WriteAsync(PodReport report, CancellationToken cancellationToken)
        {
            await inner.WriteAsync(report, cancellationToken);
            await Seen.WriteAsync(report, cancellationToken);
        }
    }

    private static JsonObject PodJson(string name, string image, string restartPolicy, Action<V1PodSpec>? change = null)
    {
        var spec = new V1PodSpec { NodeName = "wasm-node", RestartPolicy = restartPolicy, TerminationGracePeriodSeconds = 30, Containers = [new V1Container { Name = "main", Image = image }] };
        change?.Invoke(spec);
        return JsonNode.Parse(KubernetesJson.Serialize(new V1Pod { ApiVersion = "v1", Kind = "Pod", Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" }, Spec = spec }))!.AsObject();
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Pods_created_in_the_API_run_report_their_status_and_are_deleted_the_kubelet_way()
    {
        await using var api = await ApiEmulator.StartAsync(TestContext.CancellationToken);
        using var client = new k8s.Kubernetes(new KubernetesClientConfiguration { Host = api.Url });
        var root = Directory.CreateTempSubdirectory("krustlet-agent-").FullName;
        var node = new NodeAllocatable("wasm-node", 110, new ResourceQuantity("2"), new ResourceQuantity("4Gi"));
        using var pool = new ExecutorPool(Host, 8);
        var events = KubernetesEventRecorder.Start(client, "wasm-node");
        var writer = new Observed(new KubernetesPodStatusWriter(client, "10.0.0.9"));
        // The run stage's backoffs run on a fake clock the test advances: no wait on wall time.
        var runTime = new SignallingTimeProvider();
        await using var pipeline = PodPipeline.Start(
            context => new PodStages(
                new AdmissionStage(node),
                new LocalImages(new Dictionary<string, string> { ["hello"] = WasmFixtures.C("hello"), ["spin"] = WasmFixtures.Wat(Wat.InfiniteLoop), ["crash"] = WasmFixtures.Wat(Wat.Exit(1)), ["inspect"] = WasmFixtures.C("inspect") }),
                new CompileStage(new CompileCache(Host, Path.Combine(root, "cache"))),
                new VolumeSetupStage(new KubernetesPodResources(client), new VolumeOptions(Path.Combine(root, "pods")), node, context),
                new RunStage(pool, new RunOptions(Path.Combine(root, "logs")), context, runTime, events: events)),
            writer,
            TestPods.Options());
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken);
        var watching = pipeline.RunAsync(new KubernetesPodSource(client, "wasm-node"), stop.Token);

        api.Put("pods", PodJson("hello", "hello", "Never"));
        api.Put("pods", PodJson("server", "spin", "Always"));
        var helloUid = api.Get("pods", "default", "hello")!["metadata"]!["uid"]!.GetValue<string>();
        var serverUid = api.Get("pods", "default", "server")!["metadata"]!["uid"]!.GetValue<string>();

        await writer.Seen.WaitForAsync(helloUid, r => r.Runtime?.Phase == PodPhase.Succeeded, TestContext.CancellationToken);
        await writer.Seen.WaitForAsync(serverUid, r => r.Runtime?.Phase == PodPhase.Running && r.Runtime.Containers[0].Running, TestContext.CancellationToken);

        // Restarts per policy are visible in the status; configMaps and secrets come from the API.
        api.Put("configmaps", JsonNode.Parse(KubernetesJson.Serialize(new V1ConfigMap { ApiVersion = "v1", Kind = "ConfigMap", Metadata = new V1ObjectMeta { Name = "settings", NamespaceProperty = "default" }, Data = new Dictionary<string, string> { ["mode"] = "from-the-api" } }))!.AsObject());
        api.Put("secrets", JsonNode.Parse(KubernetesJson.Serialize(new V1Secret { ApiVersion = "v1", Kind = "Secret", Metadata = new V1ObjectMeta { Name = "creds", NamespaceProperty = "default" }, Data = new Dictionary<string, byte[]> { ["token"] = "s3cret"u8.ToArray() } }))!.AsObject());
        var firstBackoff = runTime.NextTimer; // the crasher's, the only timer on the run stage's clock until a pod is deleted
        api.Put("pods", PodJson("crasher", "crash", "OnFailure"));
        api.Put("pods", PodJson("reader", "inspect", "Never", spec =>
        {
            spec.Volumes = [new V1Volume { Name = "settings", ConfigMap = new V1ConfigMapVolumeSource { Name = "settings" } }];
            spec.Containers[0].VolumeMounts = [new V1VolumeMount { Name = "settings", MountPath = "/settings" }];
            spec.Containers[0].Args = ["/settings/mode"];
            spec.Containers[0].Env = [new V1EnvVar { Name = "TOKEN", ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = "creds", Key = "token" } } }];
        }));
        var crasherUid = api.Get("pods", "default", "crasher")!["metadata"]!["uid"]!.GetValue<string>();
        var readerUid = api.Get("pods", "default", "reader")!["metadata"]!["uid"]!.GetValue<string>();
        await firstBackoff.WaitAsync(TestContext.CancellationToken);
        var secondBackoff = runTime.NextTimer;
        runTime.Advance(TimeSpan.FromSeconds(10));
        await secondBackoff.WaitAsync(TestContext.CancellationToken);
        runTime.Advance(TimeSpan.FromSeconds(20));
        await writer.Seen.WaitForAsync(crasherUid, r => r.Runtime?.Containers[0].RestartCount >= 2, TestContext.CancellationToken);
        await writer.Seen.WaitForAsync(readerUid, r => r.Runtime?.Phase == PodPhase.Succeeded, TestContext.CancellationToken);
        var crasher = KubernetesJson.Deserialize<V1Pod>(api.Get("pods", "default", "crasher")!.ToJsonString());
        Assert.IsTrue(crasher.Status.ContainerStatuses[0].RestartCount >= 2);
        Assert.AreEqual(1, crasher.Status.ContainerStatuses[0].LastState.Terminated.ExitCode);
        var readerLog = File.ReadAllText(Path.Combine(root, "logs", $"default_reader_{readerUid}", "main", "0.log"));
        StringAssert.Contains(readerLog, "stdout F FILE /settings/mode=from-the-api");
        StringAssert.Contains(readerLog, "stdout F ENV TOKEN=s3cret");

        var hello = KubernetesJson.Deserialize<V1Pod>(api.Get("pods", "default", "hello")!.ToJsonString());
        Assert.AreEqual("Succeeded", hello.Status.Phase);
        Assert.AreEqual(0, hello.Status.ContainerStatuses[0].State.Terminated.ExitCode);
        Assert.AreEqual("Completed", hello.Status.ContainerStatuses[0].State.Terminated.Reason);
        var server = KubernetesJson.Deserialize<V1Pod>(api.Get("pods", "default", "server")!.ToJsonString());
        Assert.AreEqual("Running", server.Status.Phase);
        Assert.AreEqual("True", server.Status.Conditions.Single(c => c.Type == "Ready").Status);

        // kubectl delete: a graceful deletion; the agent stops the pod, writes its end, and deletes it with grace 0.
        await client.CoreV1.DeleteNamespacedPodAsync("server", "default", gracePeriodSeconds: 30, cancellationToken: TestContext.CancellationToken);
        await writer.Seen.WaitForAsync(serverUid, r => r.Kind == PodReportKind.Deleted, TestContext.CancellationToken);

        Assert.IsNull(api.Get("pods", "default", "server"), "the pod object is gone");
        Assert.IsNull(pipeline.Stages.Run.Current(serverUid), "the spinning server's containers were stopped and the pod forgotten");
        Assert.IsFalse(Directory.Exists(Path.Combine(root, "pods", serverUid)), "its volumes were torn down");
        Assert.IsTrue(api.Requests.Count(r => r.StartsWith("PATCH /api/v1/namespaces/default/pods/hello", StringComparison.Ordinal)) < 10, "status writes do not feed back into the watch");

        await stop.CancelAsync();
        try
        {
            await watching;
        }
        catch (OperationCanceledException)
        {
        }

        // The kubelet's events, as kubectl describe shows them (stop the pods first: the crasher keeps
        // restarting, and an event recorded after the recorder is closed counts as dropped).
        await pipeline.StopAsync();
        await events.DisposeAsync();
        var posted = api.All("events").Select(e => (Pod: e["involvedObject"]!["name"]!.GetValue<string>(), Reason: e["reason"]!.GetValue<string>(), Message: e["message"]!.GetValue<string>())).ToList();
        CollectionAssert.IsSubsetOf(new[] { ("hello", "Created", "Created container main"), ("hello", "Started", "Started container main"), ("server", "Killing", "Stopping container main") }, posted);
        Assert.AreEqual(0, events.Dropped);
        Directory.Delete(root, recursive: true);
    }
}
