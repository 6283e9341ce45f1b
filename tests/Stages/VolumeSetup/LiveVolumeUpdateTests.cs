using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.Admission;
using Krustlet.Stages.Compile;
using Krustlet.Stages.Kubernetes;
using Krustlet.Stages.Run;
using Krustlet.Stages.VolumeSetup;

namespace Krustlet.Stages.Tests.VolumeSetup;

/// <summary>
/// Volumes follow their sources while a real guest runs: ConfigMaps and Secrets changed in the API
/// emulator reach the files the guest reads through its preopens at the next sync (on a fake clock), the
/// pod's labels reach its downwardAPI files at the pod's update; subPath mounts and env stay as they were.
/// </summary>
[TestClass]
public sealed class LiveVolumeUpdateTests
{
    private static readonly WasmEngineHost Host = new(new WasmEngineOptions());
    private static readonly NodeAllocatable Node = new("wasm-node", 110, new ResourceQuantity("4"), new ResourceQuantity("8Gi"));

    private string _root = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void Create() => _root = Directory.CreateTempSubdirectory("krustlet-livevol-").FullName;

    [TestCleanup]
    public void Remove() => Directory.Delete(_root, recursive: true);

    private static JsonObject Json(object value) => JsonNode.Parse(KubernetesJson.Serialize(value))!.AsObject();

    private static JsonObject ConfigMap(string name, Dictionary<string, string> data) =>
        Json(new V1ConfigMap { ApiVersion = "v1", Kind = "ConfigMap", Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "shop" }, Data = data });

    private static JsonObject Secret(string name, Dictionary<string, string> data) =>
        Json(new V1Secret { ApiVersion = "v1", Kind = "Secret", Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "shop" }, Data = data.ToDictionary(p => p.Key, p => System.Text.Encoding.UTF8.GetBytes(p.Value)) });

    /// <summary>Completes when <paramref name="file"/> exists (an inotify watch, then a look, so a file made in between is not missed).</summary>
    private static async Task WaitForFileAsync(string file, CancellationToken cancellationToken)
    {
        var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var watcher = new FileSystemWatcher(Path.GetDirectoryName(file)!, Path.GetFileName(file));
        watcher.Created += (_, _) => created.TrySetResult();
        watcher.EnableRaisingEvents = true;
        if (!File.Exists(file))
        {
            await created.Task.WaitAsync(cancellationToken);
        }
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task ConfigMap_secret_and_downwardAPI_changes_reach_a_running_guest_and_subPath_and_env_stay()
    {
        var cancel = TestContext.CancellationToken;
        await using var api = await ApiEmulator.StartAsync(cancel);
        using var client = new k8s.Kubernetes(new KubernetesClientConfiguration { Host = api.Url });
        api.Put("configmaps", ConfigMap("app-config", new() { ["greeting"] = "hello", ["colour"] = "blue" }));
        api.Put("configmaps", ConfigMap("extra", new() { ["flag"] = "on" }));
        api.Put("configmaps", ConfigMap("required", new() { ["kept"] = "as it was" }));
        api.Put("secrets", Secret("app-secret", new() { ["password"] = "hunter2" }));

        var time = new SignallingTimeProvider();
        using var pool = new ExecutorPool(Host, 4);
        VolumeSetupStage? volumes = null;
        var writer = new ObservingWriter();
        await using var pipeline = PodPipeline.Start(
            context =>
            {
                volumes = new VolumeSetupStage(new KubernetesPodResources(client), new VolumeOptions(Path.Combine(_root, "pods")), Node, context, time: time);
                return new PodStages(
                    new AdmissionStage(Node),
                    new LocalImages(new Dictionary<string, string> { ["rereader"] = WasmFixtures.C("rereader") }),
                    new CompileStage(new CompileCache(Host, Path.Combine(_root, "cache"))),
                    volumes,
                    new RunStage(pool, new RunOptions(Path.Combine(_root, "logs")), context, time));
            },
            writer,
            TestPods.Options(),
            time: time);

        string[] files = ["/config/greeting", "/config/colour", "/conf-only/greeting.txt", "/secret/password", "/extra/flag", "/required/kept", "/podinfo/labels"];
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "follower", NamespaceProperty = "shop", Uid = "uid-follower", ResourceVersion = "1", Labels = new Dictionary<string, string> { ["app"] = "web" } },
            Spec = new V1PodSpec
            {
                NodeName = "wasm-node",
                RestartPolicy = "Never",
                Volumes =
                [
                    new() { Name = "config", ConfigMap = new V1ConfigMapVolumeSource { Name = "app-config" } },
                    new() { Name = "nested", ConfigMap = new V1ConfigMapVolumeSource { Name = "app-config", Items = [new V1KeyToPath { Key = "greeting", Path = "conf/greeting.txt" }] } },
                    new() { Name = "creds", Secret = new V1SecretVolumeSource { SecretName = "app-secret" } },
                    new() { Name = "extra", ConfigMap = new V1ConfigMapVolumeSource { Name = "extra", Optional = true } },
                    new() { Name = "required", ConfigMap = new V1ConfigMapVolumeSource { Name = "required" } },
                    new() { Name = "podinfo", DownwardAPI = new V1DownwardAPIVolumeSource { Items = [new V1DownwardAPIVolumeFile { Path = "labels", FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.labels" } }] } },
                    new() { Name = "signals", EmptyDir = new V1EmptyDirVolumeSource() },
                ],
                Containers =
                [
                    new V1Container
                    {
                        Name = "main",
                        Image = "rereader",
                        Args = ["/signals", .. files],
                        Env = [new V1EnvVar { Name = "FROM_CM", ValueFrom = new V1EnvVarSource { ConfigMapKeyRef = new V1ConfigMapKeySelector { Name = "app-config", Key = "greeting" } } }],
                        VolumeMounts =
                        [
                            new() { Name = "config", MountPath = "/config" },
                            new() { Name = "nested", MountPath = "/conf-only", SubPath = "conf" },
                            new() { Name = "creds", MountPath = "/secret" },
                            new() { Name = "extra", MountPath = "/extra" },
                            new() { Name = "required", MountPath = "/required" },
                            new() { Name = "podinfo", MountPath = "/podinfo" },
                            new() { Name = "signals", MountPath = "/signals" },
                        ],
                    },
                ],
            },
        };

        await pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), cancel);
        var signals = Path.Combine(_root, "pods", pod.Metadata.Uid, "volumes", "signals");
        await writer.WaitForAsync(pod.Metadata.Uid, r => r.Runtime?.Containers[0].Running == true, cancel);
        await WaitForFileAsync(Path.Combine(signals, "ready"), cancel);

        // The kubelet's layout: a timestamped payload directory, ..data pointing at it, each key a relative link through ..data.
        var config = volumes!.VolumePath(pod.Metadata.Uid, "config");
        var firstPayload = new FileInfo(Path.Combine(config, "..data")).LinkTarget!;
        StringAssert.Matches(firstPayload, new System.Text.RegularExpressions.Regex(@"^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d{9}$"));
        Assert.AreEqual("..data/greeting", new FileInfo(Path.Combine(config, "greeting")).LinkTarget);

        // The pod's labels change: its update rewrites the downwardAPI volume.
        var relabelled = KubernetesJson.Deserialize<V1Pod>(KubernetesJson.Serialize(pod));
        relabelled.Metadata.ResourceVersion = "2";
        relabelled.Metadata.Labels["tier"] = "back";
        await pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, relabelled), cancel);
        await writer.WaitForAsync(pod.Metadata.Uid, r => r.ResourceVersion == "2", cancel);
        Assert.AreEqual("app=\"web\"\ntier=\"back\"", File.ReadAllText(Path.Combine(volumes.VolumePath(pod.Metadata.Uid, "podinfo"), "labels")));

        // The sources change: a key changes, one is deleted, an optional source and a required one disappear.
        api.Put("configmaps", ConfigMap("app-config", new() { ["greeting"] = "hola" }));
        api.Put("secrets", Secret("app-secret", new() { ["password"] = "swordfish" }));
        Assert.IsTrue(api.Remove("configmaps", "shop", "extra"));
        Assert.IsTrue(api.Remove("configmaps", "shop", "required"));

        // Nothing else changes before the sync period passes on the clock.
        Assert.AreEqual("hello", File.ReadAllText(Path.Combine(config, "greeting")));
        var synced = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        volumes.Synced += n => synced.TrySetResult(n);
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.AreEqual(4, await synced.Task.WaitAsync(cancel), "config, nested and creds rewritten, extra emptied; required kept, podinfo unchanged since the update");

        Assert.IsFalse(Directory.Exists(Path.Combine(config, firstPayload)), "the old payload is removed after the swap");
        Assert.IsFalse(File.Exists(Path.Combine(config, "colour")) || new FileInfo(Path.Combine(config, "colour")).LinkTarget is not null, "a deleted key's link is removed");

        await File.WriteAllTextAsync(Path.Combine(signals, "go"), string.Empty, cancel);
        var done = await writer.WaitForAsync(pod.Metadata.Uid, r => r.Runtime?.Phase is PodPhase.Succeeded or PodPhase.Failed, cancel);
        Assert.AreEqual(PodPhase.Succeeded, done.Runtime!.Phase, done.Runtime.Message);

        var log = File.ReadAllLines(Path.Combine(_root, "logs", $"shop_follower_{pod.Metadata.Uid}", "main", "0.log")).Select(l => l.Split(' ', 4)[3]).ToList();
        string Seen(int round, string file) => log.Single(l => l.StartsWith($"ROUND {round} {file}", StringComparison.Ordinal))[$"ROUND {round} {file}".Length..];

        Assert.AreEqual("=hello", Seen(0, "/config/greeting"));
        Assert.AreEqual("=hola", Seen(1, "/config/greeting"));
        Assert.AreEqual("=blue", Seen(0, "/config/colour"));
        StringAssert.StartsWith(Seen(1, "/config/colour"), " missing", "a key deleted from the ConfigMap is gone from the volume");
        Assert.AreEqual("=hello", Seen(0, "/conf-only/greeting.txt"));
        Assert.AreEqual("=hello", Seen(1, "/conf-only/greeting.txt"), "a subPath mount is not updated, as in Kubernetes");
        Assert.AreEqual("=hunter2", Seen(0, "/secret/password"));
        Assert.AreEqual("=swordfish", Seen(1, "/secret/password"));
        Assert.AreEqual("=on", Seen(0, "/extra/flag"));
        StringAssert.StartsWith(Seen(1, "/extra/flag"), " missing", "an optional source that disappears leaves an empty volume, as the kubelet");
        Assert.AreEqual("=as it was", Seen(1, "/required/kept"), "a required source that disappears leaves the volume as it was, as the kubelet");
        Assert.AreEqual("=app=\"web\"", Seen(0, "/podinfo/labels"));
        Assert.AreEqual("=app=\"web\"\\ntier=\"back\"", Seen(1, "/podinfo/labels"));
        Assert.AreEqual("=hello", Seen(1, "ENV FROM_CM"), "env values stay as they were at start");
        Assert.AreEqual(0, done.Runtime.Containers[0].RestartCount, "the container ran once, through the update");
    }
}
