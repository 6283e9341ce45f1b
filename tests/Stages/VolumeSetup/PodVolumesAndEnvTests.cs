using k8s.Models;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.Admission;
using Krustlet.Stages.Compile;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;
using Krustlet.Stages.VolumeSetup;

namespace Krustlet.Stages.Tests.VolumeSetup;

/// <summary>A real wasm module reads back every volume type and env source through the real stages.</summary>
[TestClass]
public sealed class PodVolumesAndEnvTests
{
    private static readonly WasmEngineHost Host = new(new WasmEngineOptions());
    private static readonly NodeAllocatable Node = new("wasm-node", 110, new ResourceQuantity("4"), new ResourceQuantity("8Gi"));

    private string _root = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void Create() => _root = Directory.CreateTempSubdirectory("krustlet-podvol-").FullName;

    [TestCleanup]
    public void Remove() => EmptyDirLimits.RemoveDirectory(_root); // a failed Tmpfs test may leave its mount

    private sealed record Harness(PodPipeline Pipeline, ObservingWriter Writer, InMemoryPodResources Resources, ExecutorPool Pool, VolumeSetupStage Volumes, SignallingTimeProvider Time, string HostDir) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Pipeline.DisposeAsync();
            Pool.Dispose();
        }
    }

    private Harness Start(EmptyDirSizeLimitMode sizeLimits = EmptyDirSizeLimitMode.Evict)
    {
        var time = new SignallingTimeProvider();
        var resources = new InMemoryPodResources();
        var hostDir = Directory.CreateDirectory(Path.Combine(_root, "host-allowed")).FullName;
        var pool = new ExecutorPool(Host, 4, time);
        VolumeSetupStage? volumes = null;
        var writer = new ObservingWriter();
        var pipeline = PodPipeline.Start(
            context =>
            {
                volumes = new VolumeSetupStage(resources, new VolumeOptions(Path.Combine(_root, "pods")) { AllowedHostPathPrefixes = [hostDir], NodeIp = "10.1.2.3", EmptyDirSizeLimit = sizeLimits }, Node, context, time: time);
                return new PodStages(
                    new AdmissionStage(Node),
                    new LocalImages(new Dictionary<string, string> { ["inspect"] = WasmFixtures.C("inspect"), ["spin"] = WasmFixtures.Wat(Wat.InfiniteLoop), ["filler"] = WasmFixtures.C("filler") }),
                    new CompileStage(new CompileCache(Host, Path.Combine(_root, "cache"))),
                    volumes,
                    new RunStage(pool, new RunOptions(Path.Combine(_root, "logs")), context, time));
            },
            writer,
            TestPods.Options(),
            time: time);
        return new Harness(pipeline, writer, resources, pool, volumes!, time, hostDir);
    }

    private static V1Pod Pod(string name, string hostDir, string[] args, IList<V1Volume> volumes, IList<V1VolumeMount> mounts, IList<V1EnvVar>? env = null, IList<V1EnvFromSource>? envFrom = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "shop", Uid = $"uid-{name}", Labels = new Dictionary<string, string> { ["app"] = "web", ["tier"] = "front" }, Annotations = new Dictionary<string, string> { ["note"] = "a \"quoted\" value" } },
        Spec = new V1PodSpec
        {
            NodeName = "wasm-node",
            ServiceAccountName = "builder",
            RestartPolicy = "Never",
            Volumes = volumes,
            Containers =
            [
                new V1Container
                {
                    Name = "main",
                    Image = "inspect",
                    Args = args,
                    VolumeMounts = mounts,
                    Env = env,
                    EnvFrom = envFrom,
                    Resources = new V1ResourceRequirements { Limits = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("500m"), ["memory"] = new("64Mi") } },
                },
            ],
        },
    };

    private async Task<(Dictionary<string, string> Env, Dictionary<string, string> Files, List<string> Writes)> RunAndRead(Harness harness, V1Pod pod)
    {
        await harness.Pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        var done = await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Runtime?.Phase is PodPhase.Succeeded or PodPhase.Failed || r.Kind == PodReportKind.Failed, TestContext.CancellationToken);
        Assert.AreEqual(PodPhase.Succeeded, done.Runtime?.Phase, $"{done.Reason}: {done.Message}");
        var log = File.ReadAllLines(Path.Combine(_root, "logs", $"shop_{pod.Metadata.Name}_{pod.Metadata.Uid}", "main", "0.log")).Select(l => l.Split(' ', 4)[3]).ToList();
        return (
            log.Where(l => l.StartsWith("ENV ", StringComparison.Ordinal)).Select(l => l[4..].Split('=', 2)).ToDictionary(p => p[0], p => p[1]),
            log.Where(l => l.StartsWith("FILE ", StringComparison.Ordinal)).Select(l => ParseFile(l[5..])).ToDictionary(p => p.Path, p => p.Content),
            [.. log.Where(l => l.StartsWith("WRITE ", StringComparison.Ordinal))]);
    }

    // "path=content" or "path missing: why".
    private static (string Path, string Content) ParseFile(string line)
    {
        var missing = line.IndexOf(" missing: ", StringComparison.Ordinal);
        var equals = line.IndexOf('=', StringComparison.Ordinal);
        return missing >= 0 && (equals < 0 || missing < equals)
            ? (line[..missing], "missing: " + line[(missing + 10)..])
            : (line[..equals], line[(equals + 1)..]);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Every_volume_type_and_env_source_is_what_the_module_sees()
    {
        await using var harness = Start();
        harness.Resources.Add("shop", "app-config", new() { ["greeting"] = "hello", ["colour"] = "blue", ["1bad"] = "skipped without prefix" }, new() { ["blob.bin"] = [0x41, 0x42] });
        harness.Resources.AddSecret("shop", "app-secret", new() { ["password"] = "hunter2", ["bad key"] = "never an env var" });
        var volumes = new List<V1Volume>
        {
            new() { Name = "scratch", EmptyDir = new V1EmptyDirVolumeSource() },
            new() { Name = "config", ConfigMap = new V1ConfigMapVolumeSource { Name = "app-config", DefaultMode = Convert.ToInt32("640", 8), Items = [new V1KeyToPath { Key = "greeting", Path = "conf/greeting.txt", Mode = Convert.ToInt32("400", 8) }, new V1KeyToPath { Key = "blob.bin", Path = "blob.bin" }] } },
            new() { Name = "creds", Secret = new V1SecretVolumeSource { SecretName = "app-secret" } },
            new() { Name = "podinfo", DownwardAPI = new V1DownwardAPIVolumeSource { Items = [new V1DownwardAPIVolumeFile { Path = "labels", FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.labels" } }, new V1DownwardAPIVolumeFile { Path = "annotations", FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.annotations" } }, new V1DownwardAPIVolumeFile { Path = "cpu_limit", ResourceFieldRef = new V1ResourceFieldSelector { ContainerName = "main", Resource = "limits.cpu", Divisor = new ResourceQuantity("1m") } }] } },
            new()
            {
                Name = "all",
                Projected = new V1ProjectedVolumeSource
                {
                    Sources =
                    [
                        new V1VolumeProjection { ConfigMap = new V1ConfigMapProjection { Name = "app-config", Items = [new V1KeyToPath { Key = "colour", Path = "colour" }] } },
                        new V1VolumeProjection { Secret = new V1SecretProjection { Name = "app-secret", Items = [new V1KeyToPath { Key = "password", Path = "secret/password" }] } },
                        new V1VolumeProjection { DownwardAPI = new V1DownwardAPIProjection { Items = [new V1DownwardAPIVolumeFile { Path = "uid", FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.uid" } }] } },
                        new V1VolumeProjection { ServiceAccountToken = new V1ServiceAccountTokenProjection { Path = "token", Audience = "vault", ExpirationSeconds = 7200 } },
                    ],
                },
            },
            new() { Name = "host", HostPath = new V1HostPathVolumeSource { Path = Path.Combine(harness.HostDir, "data"), Type = "DirectoryOrCreate" } },
        };
        var mounts = new List<V1VolumeMount>
        {
            new() { Name = "scratch", MountPath = "/scratch" },
            new() { Name = "config", MountPath = "/config" },
            new() { Name = "config", MountPath = "/conf-only", SubPath = "conf" },
            new() { Name = "creds", MountPath = "/secret" },
            new() { Name = "podinfo", MountPath = "/podinfo" },
            new() { Name = "all", MountPath = "/projected" },
            new() { Name = "host", MountPath = "/host" },
        };
        var env = new List<V1EnvVar>
        {
            new() { Name = "PLAIN", Value = "plain" },
            new() { Name = "EXPANDED", Value = "$(PLAIN)-x $$(PLAIN) $(NOPE)" },
            new() { Name = "POD_NAME", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.name" } } },
            new() { Name = "POD_NAMESPACE", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.namespace" } } },
            new() { Name = "POD_UID", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.uid" } } },
            new() { Name = "APP", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.labels['app']" } } },
            new() { Name = "NOTE", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.annotations['note']" } } },
            new() { Name = "NODE", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "spec.nodeName" } } },
            new() { Name = "SA", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "spec.serviceAccountName" } } },
            new() { Name = "HOST_IP", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "status.hostIP" } } },
            new() { Name = "POD_IP", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "status.podIP" } } },
            new() { Name = "MEM_MI", ValueFrom = new V1EnvVarSource { ResourceFieldRef = new V1ResourceFieldSelector { Resource = "limits.memory", Divisor = new ResourceQuantity("1Mi") } } },
            new() { Name = "FROM_CM", ValueFrom = new V1EnvVarSource { ConfigMapKeyRef = new V1ConfigMapKeySelector { Name = "app-config", Key = "greeting" } } },
            new() { Name = "FROM_SECRET", ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = "app-secret", Key = "password" } } },
            new() { Name = "OPTIONAL", ValueFrom = new V1EnvVarSource { ConfigMapKeyRef = new V1ConfigMapKeySelector { Name = "no-such-map", Key = "k", Optional = true } } },
            new() { Name = "CM_colour", Value = "overridden by env: $(CM_greeting)" },
        };
        var envFrom = new List<V1EnvFromSource>
        {
            new() { ConfigMapRef = new V1ConfigMapEnvSource { Name = "app-config" }, Prefix = "CM_" },
            new() { SecretRef = new V1SecretEnvSource { Name = "app-secret" } },
        };
        string[] args =
        [
            "/config/conf/greeting.txt", "/config/blob.bin", "/config/colour", "/conf-only/greeting.txt", "/secret/password", "/podinfo/labels", "/podinfo/annotations",
            "/podinfo/cpu_limit", "/projected/colour", "/projected/secret/password", "/projected/uid", "/projected/token",
            "+/scratch/out.txt", "+/host/from-wasm.txt", "+/config/new.txt", "+/secret/new.txt",
        ];
        var pod = Pod("everything", harness.HostDir, args, volumes, mounts, env, envFrom);

        var (seenEnv, files, writes) = await RunAndRead(harness, pod);

        var expectedEnv = new Dictionary<string, string>
        {
            ["CM_greeting"] = "hello", ["CM_colour"] = "overridden by env: hello", ["CM_1bad"] = "skipped without prefix", ["password"] = "hunter2",
            ["PLAIN"] = "plain", ["EXPANDED"] = "plain-x $(PLAIN) $(NOPE)", ["POD_NAME"] = "everything", ["POD_NAMESPACE"] = "shop", ["POD_UID"] = "uid-everything",
            ["APP"] = "web", ["NOTE"] = "a \"quoted\" value", ["NODE"] = "wasm-node", ["SA"] = "builder", ["HOST_IP"] = "10.1.2.3", ["POD_IP"] = "10.1.2.3",
            ["MEM_MI"] = "64", ["FROM_CM"] = "hello", ["FROM_SECRET"] = "hunter2",
        };
        CollectionAssert.AreEquivalent(expectedEnv.ToArray(), seenEnv.ToArray(), "exactly these variables: 'bad key' and the optional missing one are absent");

        Assert.AreEqual("hello", files["/config/conf/greeting.txt"]);
        Assert.AreEqual("AB", files["/config/blob.bin"]);
        StringAssert.StartsWith(files["/config/colour"], "missing", "items select keys: colour is not projected in /config");
        Assert.AreEqual("hello", files["/conf-only/greeting.txt"]);
        Assert.AreEqual("hunter2", files["/secret/password"]);
        Assert.AreEqual("app=\"web\"\\ntier=\"front\"", files["/podinfo/labels"]);
        Assert.AreEqual("note=\"a \\\"quoted\\\" value\"", files["/podinfo/annotations"]);
        Assert.AreEqual("500", files["/podinfo/cpu_limit"]);
        Assert.AreEqual("blue", files["/projected/colour"]);
        Assert.AreEqual("hunter2", files["/projected/secret/password"]);
        Assert.AreEqual("uid-everything", files["/projected/uid"]);
        Assert.AreEqual("token-for-builder-vault", files["/projected/token"]);
        Assert.AreEqual(("everything", (string?)"vault", 7200L), harness.Resources.TokenRequests.Single());

        CollectionAssert.Contains(writes, "WRITE /scratch/out.txt ok");
        CollectionAssert.Contains(writes, "WRITE /host/from-wasm.txt ok");
        Assert.IsTrue(writes.Contains("WRITE /config/new.txt refused: Read-only file system") || writes.Any(w => w.StartsWith("WRITE /config/new.txt refused", StringComparison.Ordinal)), string.Join('\n', writes));
        Assert.IsTrue(writes.Any(w => w.StartsWith("WRITE /secret/new.txt refused", StringComparison.Ordinal)), "secret volumes are read-only");
        Assert.AreEqual("written\n", File.ReadAllText(Path.Combine(harness.HostDir, "data", "from-wasm.txt")));

        // Modes are checked on the host: WASI shows a guest no permission bits.
        var podDir = Path.Combine(_root, "pods", "uid-everything");
        Assert.AreEqual(UnixFileMode.UserRead, File.GetUnixFileMode(Path.Combine(podDir, "volumes", "config", "conf", "greeting.txt")), "item mode 0400");
        Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(Path.Combine(podDir, "volumes", "config", "blob.bin")), "defaultMode 0640");
        Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(Path.Combine(podDir, "volumes", "creds", "password")), "default 0644");
        Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(podDir), "the pod's directory is owner-only");

        // Deleting the pod removes its directory.
        await harness.Pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Delete(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Kind == PodReportKind.Deleted, TestContext.CancellationToken);
        Assert.IsFalse(Directory.Exists(podDir));
        Assert.IsTrue(File.Exists(Path.Combine(harness.HostDir, "data", "from-wasm.txt")), "a hostPath is the host's, not the pod's");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_missing_configMap_waits_with_CreateContainerConfigError_and_the_pod_starts_once_it_appears()
    {
        await using var harness = Start();
        var pod = Pod("later", harness.HostDir, ["/config/key"], [new V1Volume { Name = "config", ConfigMap = new V1ConfigMapVolumeSource { Name = "created-later" } }], [new V1VolumeMount { Name = "config", MountPath = "/config" }]);

        var timer = harness.Time.NextTimer;
        await harness.Pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        var waiting = await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Kind == PodReportKind.Failed, TestContext.CancellationToken);

        Assert.AreEqual("CreateContainerConfigError", waiting.Reason);
        Assert.AreEqual("VolumeSetup: configmap \"created-later\" not found", waiting.Message);
        Assert.AreEqual(PodPhase.Pending, waiting.Runtime!.Phase);
        Assert.AreEqual("CreateContainerConfigError", ((WaitingState)waiting.Runtime.Containers[0].State).Reason);

        harness.Resources.Add("shop", "created-later", new() { ["key"] = "arrived" });
        await timer.WaitAsync(TestContext.CancellationToken);
        harness.Time.Advance(TimeSpan.FromSeconds(10));
        var done = await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Runtime?.Phase == PodPhase.Succeeded, TestContext.CancellationToken);
        Assert.AreEqual(PodPhase.Succeeded, done.Runtime!.Phase);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task An_emptyDir_over_its_sizeLimit_evicts_the_pod()
    {
        await using var harness = Start();
        var pod = Pod("hoarder", harness.HostDir, [], [new V1Volume { Name = "cache", EmptyDir = new V1EmptyDirVolumeSource { SizeLimit = new ResourceQuantity("1Mi") } }], [new V1VolumeMount { Name = "cache", MountPath = "/cache" }]);
        pod.Spec.RestartPolicy = "Always";
        pod.Spec.Containers[0].Image = "spin";

        var sizeCheck = harness.Time.NextTimer;
        await harness.Pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Runtime?.Containers[0].Running == true, TestContext.CancellationToken);
        await sizeCheck.WaitAsync(TestContext.CancellationToken);

        // Within the limit nothing happens; over it, the next check evicts.
        File.WriteAllBytes(Path.Combine(harness.Volumes.VolumePath(pod.Metadata.Uid, "cache"), "small"), new byte[512 * 1024]);
        Assert.AreEqual(0, await harness.Volumes.CheckSizesAsync());
        File.WriteAllBytes(Path.Combine(harness.Volumes.VolumePath(pod.Metadata.Uid, "cache"), "large"), new byte[1024 * 1024]);
        harness.Time.Advance(TimeSpan.FromSeconds(10));
        var evicted = await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Runtime?.Phase == PodPhase.Failed, TestContext.CancellationToken);

        Assert.AreEqual("Evicted", evicted.Runtime!.Reason);
        Assert.AreEqual("Usage of EmptyDir volume \"cache\" exceeds the limit \"1Mi\".", evicted.Runtime.Message);
        var killed = await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Runtime?.Containers[0].State is TerminatedState, TestContext.CancellationToken);
        StringAssert.StartsWith(((TerminatedState)killed.Runtime!.Containers[0].State).Message, "killed: evicted: Usage of EmptyDir volume");
        Assert.AreEqual(0, killed.Runtime.Containers[0].RestartCount, "an evicted pod is not restarted");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_guest_that_fills_an_emptyDir_past_its_sizeLimit_and_exits_is_evicted_and_never_reported_Succeeded()
    {
        await using var harness = Start();
        var pod = Pod("quick-hoarder", harness.HostDir, [], [new V1Volume { Name = "cache", EmptyDir = new V1EmptyDirVolumeSource { SizeLimit = new ResourceQuantity("1Ki") } }], [new V1VolumeMount { Name = "cache", MountPath = "/cache" }]);
        pod.Spec.Containers[0].Image = "filler";
        pod.Spec.Containers[0].Args = ["/cache/out", "60364"];

        // The clock never reaches the periodic check: only the check at the container's exit can see it.
        await harness.Pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        var done = await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Runtime?.Phase is PodPhase.Succeeded or PodPhase.Failed, TestContext.CancellationToken);

        Assert.AreEqual(PodPhase.Failed, done.Runtime!.Phase);
        Assert.AreEqual("Evicted", done.Runtime.Reason);
        Assert.AreEqual("Usage of EmptyDir volume \"cache\" exceeds the limit \"1Ki\".", done.Runtime.Message);
        Assert.AreEqual(0, ((TerminatedState)done.Runtime.Containers[0].State).ExitCode, "the guest itself ended well; the pod did not");
        Assert.AreEqual(60364, new FileInfo(Path.Combine(harness.Volumes.VolumePath(pod.Metadata.Uid, "cache"), "out")).Length, "in the Evict mode the writes are not stopped, as with the kubelet");
        Assert.IsFalse(harness.Writer.Reports.Timelines()[pod.Metadata.Uid].Any(r => r.Runtime?.Phase == PodPhase.Succeeded), "no report ever said Succeeded");
        Assert.AreEqual(0, await harness.Volumes.CheckSizesAsync(), "an evicted pod is not evicted twice");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task With_Tmpfs_mode_writes_past_an_emptyDirs_sizeLimit_fail_with_ENOSPC_and_the_mount_goes_with_the_pod()
    {
        if (!EmptyDirLimits.CanMount)
        {
            Assert.Inconclusive("the Tmpfs mode mounts a tmpfs and needs root; this test runs as another user");
        }

        await using var harness = Start(EmptyDirSizeLimitMode.Tmpfs);
        var pod = Pod("bounded", harness.HostDir, [], [new V1Volume { Name = "cache", EmptyDir = new V1EmptyDirVolumeSource { SizeLimit = new ResourceQuantity("2Mi") } }], [new V1VolumeMount { Name = "cache", MountPath = "/cache" }]);
        pod.Spec.Containers[0].Image = "filler";
        pod.Spec.Containers[0].Args = ["/cache/out", (20 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture)];

        await harness.Pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        var done = await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Runtime?.Phase is PodPhase.Succeeded or PodPhase.Failed, TestContext.CancellationToken);

        var volume = harness.Volumes.VolumePath(pod.Metadata.Uid, "cache");
        Assert.IsTrue(EmptyDirLimits.IsMountPoint(volume), "a tmpfs is mounted on the volume");
        var log = File.ReadAllText(Path.Combine(_root, "logs", $"shop_bounded_{pod.Metadata.Uid}", "main", "0.log"));
        StringAssert.Contains(log, "No space left on device");
        Assert.AreEqual(1, ((TerminatedState)done.Runtime!.Containers[0].State).ExitCode, log);
        Assert.IsLessThanOrEqualTo(2L * 1024 * 1024, new FileInfo(Path.Combine(volume, "out")).Length, "nothing was written past the limit");

        await harness.Pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Delete(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Kind == PodReportKind.Deleted, TestContext.CancellationToken);
        Assert.IsFalse(EmptyDirLimits.IsMountPoint(volume), "the tmpfs is unmounted");
        Assert.IsFalse(Directory.Exists(Path.Combine(_root, "pods", pod.Metadata.Uid)), "and the pod's directory removed");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_service_account_token_is_requested_again_only_after_80_percent_of_its_lifetime()
    {
        await using var harness = Start();
        var token = new V1Volume { Name = "token", Projected = new V1ProjectedVolumeSource { Sources = [new V1VolumeProjection { ServiceAccountToken = new V1ServiceAccountTokenProjection { Path = "token", Audience = "vault", ExpirationSeconds = 3600 } }] } };
        var pod = Pod("tokens", harness.HostDir, [], [token], [new V1VolumeMount { Name = "token", MountPath = "/token" }]);
        pod.Spec.RestartPolicy = "Always";
        pod.Spec.Containers[0].Image = "spin";
        await harness.Pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Runtime?.Containers[0].Running == true, TestContext.CancellationToken);

        Assert.AreEqual(0, await harness.Volumes.SyncAsync(TestContext.CancellationToken));
        Assert.HasCount(1, harness.Resources.TokenRequests, "a sync does not ask for a token that is still fresh");

        harness.Time.Advance(TimeSpan.FromSeconds(2880));
        await harness.Volumes.SyncAsync(TestContext.CancellationToken);
        Assert.HasCount(2, harness.Resources.TokenRequests, "at 80 % of 3600 s the token is requested again");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    [DataRow("items", "must not contain '..'")]
    [DataRow("hostPath", "is not under an allowed prefix")]
    [DataRow("subPath", "must not contain '..'")]
    [DataRow("optional-key", "has no key \"absent\"")]
    public async Task Crafted_paths_and_disallowed_host_paths_fail_the_pod_and_write_nothing_outside(string attack, string message)
    {
        await using var harness = Start();
        harness.Resources.Add("shop", "map", new() { ["key"] = "value" });
        var outside = Path.Combine(_root, "outside");
        V1Volume volume = attack switch
        {
            "items" => new V1Volume { Name = "v", ConfigMap = new V1ConfigMapVolumeSource { Name = "map", Items = [new V1KeyToPath { Key = "key", Path = "../../../outside/escaped" }] } },
            "hostPath" => new V1Volume { Name = "v", HostPath = new V1HostPathVolumeSource { Path = "/etc", Type = "Directory" } },
            "optional-key" => new V1Volume { Name = "v", ConfigMap = new V1ConfigMapVolumeSource { Name = "map", Items = [new V1KeyToPath { Key = "absent", Path = "x" }] } },
            _ => new V1Volume { Name = "v", EmptyDir = new V1EmptyDirVolumeSource() },
        };
        var mount = new V1VolumeMount { Name = "v", MountPath = "/v", SubPath = attack == "subPath" ? "../../outside" : null };
        var pod = Pod($"attack-{attack.ToLowerInvariant()}", harness.HostDir, [], [volume], [mount]);

        await harness.Pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        var failed = await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Kind == PodReportKind.Failed, TestContext.CancellationToken);

        Assert.AreEqual("CreateContainerConfigError", failed.Reason);
        StringAssert.Contains(failed.Message, message);
        Assert.IsFalse(Directory.Exists(outside), "nothing was written outside the pod's directory");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_pod_directory_that_is_already_a_link_is_not_followed()
    {
        await using var harness = Start();
        var outside = Directory.CreateDirectory(Path.Combine(_root, "outside")).FullName;
        var pod = Pod("linked", harness.HostDir, [], [new V1Volume { Name = "scratch", EmptyDir = new V1EmptyDirVolumeSource() }], [new V1VolumeMount { Name = "scratch", MountPath = "/scratch" }]);
        Directory.CreateDirectory(Path.Combine(_root, "pods"));
        Directory.CreateSymbolicLink(Path.Combine(_root, "pods", pod.Metadata.Uid), outside);

        await harness.Pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        var failed = await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Kind == PodReportKind.Failed, TestContext.CancellationToken);

        Assert.AreEqual("CreateContainerConfigError", failed.Reason);
        StringAssert.Contains(failed.Message, "is a symbolic link; the agent does not follow links it did not make");
        Assert.IsEmpty(Directory.GetFileSystemEntries(outside), "nothing was made through the link");
    }
}
