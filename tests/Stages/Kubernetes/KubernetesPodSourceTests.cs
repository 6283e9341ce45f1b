using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.Kubernetes;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.Kubernetes;

/// <summary>The pod watch source against the API emulator, through KubernetesClient as in production.</summary>
[TestClass]
public sealed class KubernetesPodSourceTests : EmulatorTest
{
    private static JsonObject PodJson(string name, string node = "wasm-node", string image = "r/app:1") =>
        JsonNode.Parse(KubernetesJson.Serialize(new V1Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
            Spec = new V1PodSpec { NodeName = node, Containers = [new V1Container { Name = "main", Image = image }] },
        }))!.AsObject();

    private string Uid(string name) => Api.Get("pods", "default", name)!["metadata"]!["uid"]!.GetValue<string>();

    /// <summary>Reads events from the source until <paramref name="until"/> says stop.</summary>
    private static async Task<List<PipelineEvent<V1Pod>>> ReadUntil(IAsyncEnumerator<PipelineEvent<V1Pod>> events, Func<List<PipelineEvent<V1Pod>>, bool> until)
    {
        var read = new List<PipelineEvent<V1Pod>>();
        while (!until(read) && await events.MoveNextAsync())
        {
            read.Add(events.Current);
        }

        return read;
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Lists_then_watches_only_this_nodes_pods()
    {
        Api.Put("pods", PodJson("mine-1"));
        Api.Put("pods", PodJson("elsewhere", node: "other-node"));
        var source = new KubernetesPodSource(Client, "wasm-node");
        await using var events = source.ReadAsync(TestContext.CancellationToken).GetAsyncEnumerator(TestContext.CancellationToken);

        var listed = await ReadUntil(events, r => r.Count == 1);
        Api.Put("pods", PodJson("mine-2"));
        var watched = await ReadUntil(events, r => r.Count == 1);

        Assert.AreEqual("mine-1", listed.Single().Value!.Metadata.Name);
        Assert.AreEqual("mine-2", watched.Single().Value!.Metadata.Name);
        Assert.AreEqual(EventKind.Upsert, watched.Single().Kind);
        Assert.IsTrue(Api.Requests.Any(r => r.Contains("watch=true", StringComparison.Ordinal) && r.Contains("fieldSelector=spec.nodeName%3Dwasm-node", StringComparison.Ordinal) && r.Contains("allowWatchBookmarks=true", StringComparison.Ordinal)), string.Join('\n', Api.Requests));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_watch_closed_before_any_event_is_opened_again()
    {
        var source = new KubernetesPodSource(Client, "wasm-node");
        await using var events = source.ReadAsync(TestContext.CancellationToken).GetAsyncEnumerator(TestContext.CancellationToken);
        var first = events.MoveNextAsync().AsTask();

        await Api.WatchesOpened(1).WaitAsync(TestContext.CancellationToken);
        Api.CutWatches();
        await Api.WatchesOpened(2).WaitAsync(TestContext.CancellationToken);
        Api.Put("pods", PodJson("after-reconnect"));

        Assert.IsTrue(await first.WaitAsync(TestContext.CancellationToken));
        Assert.AreEqual("after-reconnect", events.Current.Value!.Metadata.Name);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_cut_watch_resumes_from_the_last_version_and_a_410_relists_with_tombstones()
    {
        Api.Put("pods", PodJson("stays"));
        Api.Put("pods", PodJson("goes"));
        var source = new KubernetesPodSource(Client, "wasm-node");
        await using var events = source.ReadAsync(TestContext.CancellationToken).GetAsyncEnumerator(TestContext.CancellationToken);
        await ReadUntil(events, r => r.Count == 2);
        var goesUid = Uid("goes");

        // A dropped connection: the next watch starts from the last resourceVersion, nothing is replayed twice.
        Api.Put("pods", PodJson("before-cut"));
        await ReadUntil(events, r => r.Count == 1);
        Api.CutWatches();
        Api.Put("pods", PodJson("after-cut"));
        var resumed = await ReadUntil(events, r => r.Count == 1);
        Assert.AreEqual("after-cut", resumed.Single().Value!.Metadata.Name);
        Assert.AreEqual(1, source.Lists, "a cut watch resumes without a relist");

        // A deletion lost to compaction while the watch lagged, then the watch is told its version is too
        // old (410): the source relists, deletes the pod that vanished, and delivers the new one; pods that
        // did not change are not delivered again.
        Api.RemoveUnseen("pods", "default", "goes");
        Api.ExpireWatches();
        Api.Put("pods", PodJson("new-in-gap"));
        var relisted = await ReadUntil(events, r => r.Count == 2);

        Assert.AreEqual(2, source.Lists);
        CollectionAssert.AreEquivalent(
            new[] { (EventKind.Upsert, Uid("new-in-gap")), (EventKind.Delete, goesUid) },
            relisted.Select(e => (e.Kind, e.Key)).ToArray());
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Two_hundred_pods_through_a_cut_and_a_410_each_end_in_the_right_state_exactly_once()
    {
        var writer = new ObservingWriter();
        var runs = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var stages = TestPods.Stages() with
        {
            Run = new RecordingStage(StageNames.Run, (item, _) =>
            {
                runs.AddOrUpdate(item.Key, 1, (_, n) => n + 1);
                return ValueTask.FromResult(Pipeline.Engine.StageOutcome.Continue);
            }),
        };
        await using var pipeline = PodPipeline.Start(stages, writer, TestPods.Options());
        // A short watch timeout: a watch cut before it sent anything is reopened promptly.
        var source = new KubernetesPodSource(Client, "wasm-node") { WatchTimeout = TimeSpan.FromSeconds(1) };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken);
        var running = pipeline.RunAsync(source, stop.Token);
        // No step has a wall-time bound of its own (under the load of the full suite any bound can be
        // missed); the test's timeout is the bound, and a step it cuts short says where it stalled.
        string State() => $"open={Api.OpenWatches} lines={Api.LinesWritten} lists={source.Lists} watches={source.Watches} running={running.Status} {running.Exception} timelines={writer.Reports.Timelines().Count} inflight={pipeline.Graph.InFlight}\n{string.Join("\n", Api.Requests.TakeLast(8))}";
        async Task Bounded(Task task, string what)
        {
            try
            {
                await task.WaitAsync(TestContext.CancellationToken);
            }
            catch (OperationCanceledException) when (TestContext.CancellationToken.IsCancellationRequested)
            {
                Assert.Fail($"stalled: {what} {State()}");
            }
        }

        async Task Applied(int from, int to)
        {
            for (var i = from; i < to; i++)
            {
                await Bounded(writer.WaitForAsync(Uid($"pod-{i:000}"), r => r.Kind == PodReportKind.Applied, TestContext.CancellationToken), $"pod {i}");
            }
        }

        for (var i = 0; i < 100; i++)
        {
            Api.Put("pods", PodJson($"pod-{i:000}"));
        }

        await Applied(0, 100);

        // A dropped connection in the middle of a burst: the watch resumes from the last version.
        await Api.WatchesOpened(1).WaitAsync(TestContext.CancellationToken);
        Api.CutWatches();
        for (var i = 100; i < 150; i++)
        {
            Api.Put("pods", PodJson($"pod-{i:000}"));
        }

        await Applied(100, 150);

        // Deletions lost to compaction while the watch lagged, then 410: relist, tombstones.
        var goneWhileAway = Enumerable.Range(0, 150).Where(i => i % 10 == 0).Select(i => (Name: $"pod-{i:000}", Uid: Uid($"pod-{i:000}"))).ToList();
        foreach (var (name, _) in goneWhileAway)
        {
            Api.RemoveUnseen("pods", "default", name);
        }

        Api.ExpireWatches();
        for (var i = 150; i < 200; i++)
        {
            Api.Put("pods", PodJson($"pod-{i:000}"));
        }

        await Applied(150, 200);
        foreach (var (_, uid) in goneWhileAway)
        {
            await Bounded(writer.WaitForAsync(uid, r => r.Kind == PodReportKind.Deleted, TestContext.CancellationToken), $"deleted while away {uid}");
        }

        // And deletions seen live by the watch.
        var goneLive = Enumerable.Range(0, 200).Where(i => i % 10 == 5).Select(i => (Name: $"pod-{i:000}", Uid: Uid($"pod-{i:000}"))).ToList();
        foreach (var (name, _) in goneLive)
        {
            Api.Remove("pods", "default", name);
        }

        foreach (var (_, uid) in goneLive)
        {
            await Bounded(writer.WaitForAsync(uid, r => r.Kind == PodReportKind.Deleted, TestContext.CancellationToken), $"deleted live {uid}");
        }

        await Bounded(pipeline.WaitForIdleAsync(TestContext.CancellationToken), "idle");
        await stop.CancelAsync();
        try
        {
            await Bounded(running, "run end");
        }
        catch (OperationCanceledException)
        {
        }

        var timelines = writer.Reports.Timelines();
        Assert.HasCount(200, timelines);
        var deleted = goneWhileAway.Concat(goneLive).Select(d => d.Uid).ToHashSet();
        foreach (var (uid, timeline) in timelines)
        {
            Assert.AreEqual(deleted.Contains(uid) ? PodReportKind.Deleted : PodReportKind.Applied, timeline[^1].Kind, uid);
            Assert.AreEqual(1, runs.GetValueOrDefault(uid), $"{uid} was started {runs.GetValueOrDefault(uid)} times");
        }

        Assert.IsTrue(source.Lists >= 2, "the 410 made the source relist");
    }
}
