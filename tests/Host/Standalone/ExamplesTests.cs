using k8s.Models;
using Krustlet.Host.Standalone;
using Krustlet.Host.Tests.Support;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Host.Tests.Standalone;

/// <summary>The committed examples: their binaries match their sources, and every example pod runs through the real stages.</summary>
[TestClass]
public sealed class ExamplesTests
{
    private const string Node = "demo";

    private string _root = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void Setup() => _root = Directory.CreateTempSubdirectory("krustlet-examples-").FullName;

    [TestCleanup]
    public void Cleanup() => Directory.Delete(_root, recursive: true);

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public void Rebuilding_the_examples_gives_the_committed_layout_byte_for_byte()
    {
        var rebuilt = Path.Combine(_root, "images");

        Tool.Run("bash", Path.Combine(ExampleFiles.Root, "build.sh"), rebuilt);

        var committed = Directory.EnumerateFiles(ExampleFiles.Layout, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(ExampleFiles.Layout, f)).Order(StringComparer.Ordinal).ToArray();
        var fresh = Directory.EnumerateFiles(rebuilt, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(rebuilt, f)).Order(StringComparer.Ordinal).ToArray();
        CollectionAssert.AreEqual(fresh, committed, "run examples/build.sh and commit examples/images");
        foreach (var file in committed)
        {
            CollectionAssert.AreEqual(File.ReadAllBytes(Path.Combine(rebuilt, file)), File.ReadAllBytes(Path.Combine(ExampleFiles.Layout, file)), $"{file} differs from what examples/src builds: run examples/build.sh and commit examples/images");
        }
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task Every_example_pod_runs_through_the_real_stages()
    {
        var ct = TestContext.CancellationToken;
        var source = new StaticPodSource(ExampleFiles.Pods, Node) { WatchFiles = false };
        await using var stages = await ExampleStages.StartAsync(_root, Node, source.Resources, 8, ct);
        var (pipeline, writer, logs) = (stages.Pipeline, stages.Writer, stages.Logs);

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var pods = new Dictionary<string, V1Pod>();
        await foreach (var evt in source.ReadAsync(stop.Token))
        {
            pods[evt.Value!.Metadata.Name] = evt.Value;
            await pipeline.Graph.SubmitAsync(evt, ct);
            if (pods.Count == 4)
            {
                break;
            }
        }

        Assert.AreEqual(0, source.Problems.Count, string.Join("; ", source.Problems));
        string Log(string name, int run = 0)
        {
            var pod = pods[$"{name}-{Node}"];
            return Path.Combine(logs, $"default_{pod.Metadata.Name}_{pod.Metadata.Uid}", name, $"{run}.log");
        }

        ContainerStatusSnapshot Main(PodReport r) => r.Runtime!.Containers[0];

        var hello = await writer.WaitForAsync(pods[$"hello-{Node}"].Metadata.Uid, r => r.Runtime?.Phase is PodPhase.Succeeded or PodPhase.Failed || r.Kind == PodReportKind.Failed, ct);
        Assert.AreEqual(PodPhase.Succeeded, hello.Runtime?.Phase, hello.Message);
        Assert.AreEqual("Completed", ((TerminatedState)Main(hello).State).Reason);
        StringAssert.Contains(File.ReadAllText(Log("hello")), "stdout F Hello from Krustlet for .NET, running WebAssembly in a static pod!");
        StringAssert.Contains(File.ReadAllText(Log("hello")), "stdout F argument 1: standalone");

        var config = await writer.WaitForAsync(pods[$"config-{Node}"].Metadata.Uid, r => r.Runtime?.Phase is PodPhase.Succeeded or PodPhase.Failed || r.Kind == PodReportKind.Failed, ct);
        var configLog = File.ReadAllText(Log("config"));
        Assert.AreEqual(PodPhase.Succeeded, config.Runtime?.Phase, $"{config.Message}\n{configLog}");
        StringAssert.Contains(configLog, "stdout F env GREETING=Hello from a static ConfigMap");
        StringAssert.Contains(configLog, "stdout F env MODE=standalone");
        StringAssert.Contains(configLog, "stdout F file /config/message: This line comes from the configMap volume.");

        var crash = await writer.WaitForAsync(pods[$"crashloop-{Node}"].Metadata.Uid, r => r.Runtime is { } rt && rt.Containers.Count > 0 && Main(r).State is WaitingState { Reason: "CrashLoopBackOff" }, ct);
        Assert.AreEqual(PodPhase.Running, crash.Runtime!.Phase);
        Assert.AreEqual(1, Main(crash).LastState!.ExitCode);
        StringAssert.StartsWith(((WaitingState)Main(crash).State).Message, "back-off 10s restarting failed container=crashloop");
        StringAssert.Contains(File.ReadAllText(Log("crashloop")), "stdout F starting up... and failing with exit code 1");

        var counter = await writer.WaitForAsync(pods[$"counter-{Node}"].Metadata.Uid, r => r.Runtime is { } rt && rt.Containers.Count > 0 && Main(r).State is RunningState, ct);
        Assert.AreEqual(PodPhase.Running, counter.Runtime!.Phase);
        await WaitForTextAsync(Log("counter"), "stdout F count 2", ct);

        await pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Delete(pods[$"counter-{Node}"].Metadata.Uid, pods[$"counter-{Node}"]), ct);
        var deleted = await writer.WaitForAsync(pods[$"counter-{Node}"].Metadata.Uid, r => r.IsFinal, ct);
        Assert.AreEqual(PodReportKind.Deleted, deleted.Kind);
        await pipeline.DisposeAsync();
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task A_static_ConfigMap_changed_on_disk_reaches_a_running_pods_volume_at_the_next_sync()
    {
        var ct = TestContext.CancellationToken;
        var manifests = Directory.CreateDirectory(Path.Combine(_root, "manifests")).FullName;
        string ConfigMap(string message) => $"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  message: {message}\n";
        await File.WriteAllTextAsync(Path.Combine(manifests, "settings.yaml"), ConfigMap("first"), ct);
        await File.WriteAllTextAsync(Path.Combine(manifests, "counter.yaml"), string.Join('\n',
            "apiVersion: v1", "kind: Pod", "metadata:", "  name: counter", "spec:", "  containers:", "  - name: counter", "    image: examples.krustlet.dev/counter:v1",
            "    imagePullPolicy: IfNotPresent", "    volumeMounts: [{name: settings, mountPath: /settings}]", "  volumes: [{name: settings, configMap: {name: settings}}]", ""), ct);
        var source = new StaticPodSource(manifests, Node) { WatchFiles = false };
        await using var stages = await ExampleStages.StartAsync(_root, Node, source.Resources, 4, ct);
        var (pipeline, writer, volumes) = (stages.Pipeline, stages.Writer, stages.Volumes);

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        await using var events = source.ReadAsync(stop.Token).GetAsyncEnumerator(stop.Token);
        Assert.IsTrue(await events.MoveNextAsync());
        var counter = events.Current.Value!;
        await pipeline.Graph.SubmitAsync(events.Current, ct);
        await writer.WaitForAsync(counter.Metadata.Uid, r => r.Runtime is { } rt && rt.Containers.Count > 0 && rt.Containers[0].State is RunningState, ct);
        var file = Path.Combine(volumes.VolumePath(counter.Metadata.Uid, "settings"), "message");
        Assert.AreEqual("first", File.ReadAllText(file));

        // The file changes; a new pod in the same rescan tells the test the scan (and its ConfigMaps) is in.
        await File.WriteAllTextAsync(Path.Combine(manifests, "settings.yaml"), ConfigMap("second"), ct);
        await File.WriteAllTextAsync(Path.Combine(manifests, "marker.yaml"), "apiVersion: v1\nkind: Pod\nmetadata:\n  name: marker\nspec:\n  containers:\n  - name: marker\n    image: examples.krustlet.dev/hello:v1\n", ct);
        source.RequestRescan();
        Assert.IsTrue(await events.MoveNextAsync());
        Assert.AreEqual($"marker-{Node}", events.Current.Value!.Metadata.Name);

        Assert.AreEqual(1, await volumes.SyncAsync(ct));
        Assert.AreEqual("second", File.ReadAllText(file));
        Assert.AreEqual(PodPhase.Running, pipeline.Stages.Run.Current(counter.Metadata.Uid)!.Phase, "the pod kept running through the update");
        await stop.CancelAsync();
    }

    /// <summary>Completes once the file holds <paramref name="text"/>: woken by a watcher on its directory, never by a sleep.</summary>
    private static async Task WaitForTextAsync(string path, string text, CancellationToken cancellationToken)
    {
        var changed = new SemaphoreSlim(0);
        using var watcher = new FileSystemWatcher(Path.GetDirectoryName(path)!) { EnableRaisingEvents = true };
        watcher.Changed += (_, _) => changed.Release();
        watcher.Created += (_, _) => changed.Release();
        while (!(File.Exists(path) && (await File.ReadAllTextAsync(path, cancellationToken)).Contains(text, StringComparison.Ordinal)))
        {
            await changed.WaitAsync(cancellationToken);
        }
    }
}
