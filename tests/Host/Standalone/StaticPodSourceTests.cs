using System.Threading.Channels;
using k8s.Models;
using Krustlet.Host.Standalone;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.VolumeSetup;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Krustlet.Host.Tests.Standalone;

/// <summary>The static pod source over a real directory of manifests.</summary>
[TestClass]
public sealed class StaticPodSourceTests
{
    private const string Node = "node-a";

    private string _dir = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void Setup() => _dir = Directory.CreateTempSubdirectory("krustlet-manifests-").FullName;

    [TestCleanup]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    private static string PodYaml(string name, string message = "hi", string? ns = null) => $"""
        apiVersion: v1
        kind: Pod
        metadata:
          name: {name}
        {(ns is null ? string.Empty : $"  namespace: {ns}")}
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: examples.krustlet.dev/hello:v1
            args: ["{message}"]
        """;

    private void Write(string file, string text) => File.WriteAllText(Path.Combine(_dir, file), text);

    /// <summary>Reads a source into a channel and lets the test wait for events and scans.</summary>
    private sealed class Reader : IAsyncDisposable
    {
        private readonly Channel<PipelineEvent<V1Pod>> _events = Channel.CreateUnbounded<PipelineEvent<V1Pod>>();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private readonly Lock _lock = new();
        private TaskCompletionSource _scanned = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Reader(StaticPodSource source)
        {
            Source = source;
            source.Scanned += (_, _) =>
            {
                lock (_lock)
                {
                    _scanned.TrySetResult();
                    _scanned = new(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            };
            _loop = Task.Run(async () =>
            {
                try
                {
                    await foreach (var evt in source.ReadAsync(_stop.Token))
                    {
                        await _events.Writer.WriteAsync(evt, _stop.Token);
                    }
                }
                catch (OperationCanceledException)
                {
                    // stopped
                }
            });
        }

        public StaticPodSource Source { get; }

        public async Task<PipelineEvent<V1Pod>> NextAsync(CancellationToken cancellationToken) => await _events.Reader.ReadAsync(cancellationToken);

        public async Task<List<PipelineEvent<V1Pod>>> TakeAsync(int count, CancellationToken cancellationToken)
        {
            var taken = new List<PipelineEvent<V1Pod>>();
            while (taken.Count < count)
            {
                taken.Add(await NextAsync(cancellationToken));
            }

            return taken;
        }

        /// <summary>Rescans until <paramref name="condition"/> holds after a scan.</summary>
        public async Task RescanUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
        {
            while (true)
            {
                Task next;
                lock (_lock)
                {
                    next = _scanned.Task;
                }

                if (condition())
                {
                    return;
                }

                Source.RequestRescan();
                await next.WaitAsync(cancellationToken);
            }
        }

        public bool Pending => _events.Reader.TryPeek(out _);

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _loop;
            _stop.Dispose();
        }
    }

    private Reader Start(TimeProvider? time = null, bool watch = false, ILogger? logger = null) =>
        new(new StaticPodSource(_dir, Node, time, logger) { WatchFiles = watch });

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task The_initial_scan_upserts_each_valid_pod_with_the_static_pod_conventions()
    {
        Write("hello.yaml", PodYaml("hello"));
        Write("other.json", """{"apiVersion":"v1","kind":"Pod","metadata":{"name":"json","namespace":"apps"},"spec":{"containers":[{"name":"c","image":"examples.krustlet.dev/hello:v1"}]}}""");
        Write(".hidden.yaml", PodYaml("hidden"));
        Write("hello.yaml~", PodYaml("backup"));
        Write("notes.txt", "not a manifest");
        Directory.CreateDirectory(Path.Combine(_dir, "sub"));
        File.WriteAllText(Path.Combine(_dir, "sub", "nested.yaml"), PodYaml("nested"));
        await using var reader = Start();

        var events = await reader.TakeAsync(2, TestContext.CancellationToken);
        await reader.RescanUntilAsync(() => reader.Source.Scans >= 2, TestContext.CancellationToken);

        Assert.IsFalse(reader.Pending, "a rescan of an unchanged directory emits nothing");
        Assert.IsTrue(events.All(e => e.Kind == EventKind.Upsert));
        var hello = events.Single(e => e.Value!.Metadata.Name == "hello-node-a").Value!;
        Assert.AreEqual("default", hello.Metadata.NamespaceProperty);
        Assert.AreEqual(Node, hello.Spec.NodeName);
        Assert.AreEqual("file", hello.Metadata.Annotations[StaticPodSource.ConfigSourceAnnotation]);
        Assert.AreEqual(32, hello.Metadata.Annotations[StaticPodSource.ConfigHashAnnotation].Length);
        Assert.IsTrue(Guid.TryParse(hello.Metadata.Uid, out _), hello.Metadata.Uid);
        Assert.AreEqual(hello.Metadata.Uid, events.Single(e => e.Value == hello).Key);
        var json = events.Single(e => e.Value!.Metadata.Name == "json-node-a").Value!;
        Assert.AreEqual("apps", json.Metadata.NamespaceProperty);
        Assert.AreEqual(0, reader.Source.Problems.Count, string.Join("; ", reader.Source.Problems));
        CollectionAssert.AreEquivalent(new[] { "hello-node-a", "json-node-a" }, reader.Source.Pods.Select(p => p.Metadata.Name).ToArray());
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task Added_changed_and_removed_files_become_upsert_delete_then_upsert_and_delete()
    {
        Write("a.yaml", PodYaml("a"));
        await using var reader = Start();
        var first = await reader.NextAsync(TestContext.CancellationToken);

        Write("b.yml", PodYaml("b"));
        reader.Source.RequestRescan();
        var added = await reader.NextAsync(TestContext.CancellationToken);
        Assert.AreEqual((EventKind.Upsert, "b-node-a"), (added.Kind, added.Value!.Metadata.Name));

        Write("a.yaml", PodYaml("a", message: "changed"));
        reader.Source.RequestRescan();
        var changed = await reader.TakeAsync(2, TestContext.CancellationToken);
        Assert.AreEqual(EventKind.Delete, changed[0].Kind);
        Assert.AreEqual(first.Key, changed[0].Key, "the old UID is deleted");
        Assert.AreEqual(EventKind.Upsert, changed[1].Kind);
        Assert.AreNotEqual(first.Key, changed[1].Key, "the changed pod has a new UID");
        Assert.AreEqual("changed", changed[1].Value!.Spec.Containers[0].Args[0]);

        File.Delete(Path.Combine(_dir, "b.yml"));
        reader.Source.RequestRescan();
        var removed = await reader.NextAsync(TestContext.CancellationToken);
        Assert.AreEqual((EventKind.Delete, added.Key), (removed.Kind, removed.Key));
        Assert.AreEqual("b-node-a", removed.Value!.Metadata.Name, "the delete carries the last known pod");
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task The_file_watcher_triggers_a_rescan()
    {
        await using var reader = Start(watch: true);
        await reader.RescanUntilAsync(() => reader.Source.Scans >= 1, TestContext.CancellationToken);

        Write("late.yaml", PodYaml("late"));

        var evt = await reader.NextAsync(TestContext.CancellationToken);
        Assert.AreEqual("late-node-a", evt.Value!.Metadata.Name);
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task Unknown_kinds_missing_fields_and_alias_bombs_get_a_reason_not_an_exception_text()
    {
        Write("good.yaml", PodYaml("good"));
        Write("banana.yaml", "apiVersion: v1\nkind: Banana\nmetadata:\n  name: b\n");
        Write("noversion.yaml", "kind: Pod\nmetadata:\n  name: n\n");
        Write("bomb.yaml", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n");
        Write("list.yaml", "- apiVersion: v1\n  kind: Pod\n");
        Write("second.yaml", PodYaml("second").TrimEnd() + "\n---\napiVersion: v1\nkind: Banana\n");
        await using var reader = Start();

        await reader.NextAsync(TestContext.CancellationToken);
        await reader.RescanUntilAsync(() => reader.Source.Scans >= 1, TestContext.CancellationToken);

        var problems = reader.Source.Problems;
        Assert.AreEqual("Banana (v1) is not a kind a static pod manifest holds: one v1 Pod, with v1 ConfigMaps and Secrets it uses", problems["banana.yaml"]);
        Assert.AreEqual("apiVersion is not set (line 1)", problems["noversion.yaml"]);
        Assert.AreEqual("apiVersion is not set (line 1)", problems["bomb.yaml"]);
        Assert.AreEqual("not an object (a manifest is a mapping with apiVersion, kind, metadata)", problems["list.yaml"]);
        StringAssert.StartsWith(problems["second.yaml"], "document 2: Banana (v1)");
        Assert.IsFalse(problems.Values.Any(p => p.Contains("dictionary", StringComparison.Ordinal) || p.Contains("current state of the object", StringComparison.Ordinal)));
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task An_invalid_file_is_reported_precisely_while_the_others_run()
    {
        Write("good.yaml", PodYaml("good"));
        Write("broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n   bad: indentation\nspec: {}\n");
        Write("nocontainers.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: empty\nspec:\n  containers: []\n");
        Write("deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n");
        Write("twin.yaml", PodYaml("good"));
        var logs = new FakeLogger();
        await using var reader = Start(logger: logs);

        var only = await reader.NextAsync(TestContext.CancellationToken);
        await reader.RescanUntilAsync(() => reader.Source.Scans >= 1, TestContext.CancellationToken);

        Assert.AreEqual("good-node-a", only.Value!.Metadata.Name);
        Assert.IsFalse(reader.Pending);
        var problems = reader.Source.Problems;
        CollectionAssert.AreEquivalent(new[] { "broken.yaml", "nocontainers.yaml", "deployment.yaml", "twin.yaml" }, problems.Keys.ToArray());
        StringAssert.StartsWith(problems["broken.yaml"], "line 5, column");
        StringAssert.Contains(problems["nocontainers.yaml"], "has no containers");
        StringAssert.Contains(problems["deployment.yaml"], "Deployment");
        Assert.AreEqual("pod default/good-node-a is already defined by good.yaml", problems["twin.yaml"]);
        var warnings = logs.Collector.GetSnapshot().Where(r => r.Level == LogLevel.Warning).Select(r => r.Message).ToList();
        Assert.AreEqual(4, warnings.Count, string.Join("\n", warnings));
        Assert.IsTrue(warnings.Any(w => w.Contains(Path.Combine(_dir, "broken.yaml"), StringComparison.Ordinal) && w.Contains("line 5", StringComparison.Ordinal)), string.Join("\n", warnings));

        await reader.RescanUntilAsync(() => reader.Source.Scans >= 3, TestContext.CancellationToken);
        Assert.AreEqual(4, logs.Collector.GetSnapshot().Count(r => r.Level == LogLevel.Warning), "an unchanged problem is logged once");
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task A_file_that_turns_invalid_keeps_its_pod_until_it_is_fixed()
    {
        Write("a.yaml", PodYaml("a"));
        await using var reader = Start();
        var first = await reader.NextAsync(TestContext.CancellationToken);

        Write("a.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: []}\n");
        await reader.RescanUntilAsync(() => reader.Source.Problems.ContainsKey("a.yaml"), TestContext.CancellationToken);

        Assert.IsFalse(reader.Pending, "no delete for a pod whose file turned invalid");
        Assert.AreEqual(first.Key, reader.Source.Pods.Single().Metadata.Uid);

        Write("a.yaml", PodYaml("a", message: "fixed"));
        reader.Source.RequestRescan();
        var fixedEvents = await reader.TakeAsync(2, TestContext.CancellationToken);
        Assert.AreEqual((EventKind.Delete, first.Key), (fixedEvents[0].Kind, fixedEvents[0].Key));
        Assert.AreEqual("fixed", fixedEvents[1].Value!.Spec.Containers[0].Args[0]);
        Assert.AreEqual(0, reader.Source.Problems.Count);
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task The_periodic_rescan_runs_on_the_injected_clock()
    {
        var time = new SignallingTimeProvider();
        var timer = time.NextTimer;
        await using var reader = Start(time);
        await timer;
        await reader.RescanUntilAsync(() => reader.Source.Scans >= 1, TestContext.CancellationToken);

        Write("a.yaml", PodYaml("a"));
        Assert.IsFalse(reader.Pending);
        time.Advance(TimeSpan.FromSeconds(20));

        var evt = await reader.NextAsync(TestContext.CancellationToken);
        Assert.AreEqual("a-node-a", evt.Value!.Metadata.Name);
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task Two_source_instances_give_an_unchanged_file_the_same_uid_and_another_node_a_different_one()
    {
        Write("a.yaml", PodYaml("a"));
        string firstUid;
        await using (var first = Start())
        {
            firstUid = (await first.NextAsync(TestContext.CancellationToken)).Key;
        }

        await using var second = Start();
        await using var otherNode = new Reader(new StaticPodSource(_dir, "node-b") { WatchFiles = false });

        Assert.AreEqual(firstUid, (await second.NextAsync(TestContext.CancellationToken)).Key);
        Assert.AreNotEqual(firstUid, (await otherNode.NextAsync(TestContext.CancellationToken)).Key);
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task ConfigMaps_and_secrets_in_the_directory_are_the_pods_resources()
    {
        Write("config.yaml", """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: settings
            data:
              greeting: hello
            ---
            apiVersion: v1
            kind: Secret
            metadata:
              name: creds
              namespace: apps
            data:
              token: c2VjcmV0
            stringData:
              user: admin
            """);
        await using var reader = Start();
        await reader.RescanUntilAsync(() => reader.Source.Scans >= 1, TestContext.CancellationToken);
        var resources = reader.Source.Resources;
        var ct = TestContext.CancellationToken;

        Assert.AreEqual("hello", (await resources.GetConfigMapAsync("default", "settings", ct))!.Data["greeting"]);
        var secret = (await resources.GetAsync("apps", "creds", ct))!;
        Assert.AreEqual("secret", System.Text.Encoding.UTF8.GetString(secret.Data["token"]));
        Assert.AreEqual("admin", System.Text.Encoding.UTF8.GetString(secret.Data["user"]), "stringData is merged into data");
        Assert.IsNull(await resources.GetConfigMapAsync("apps", "settings", ct), "a missing configMap reads as null, as a 404 on the cluster path");
        Assert.IsNull(await resources.GetAsync("default", "creds", ct));
        await Assert.ThrowsExactlyAsync<PodConfigException>(async () => await resources.RequestTokenAsync(new V1Pod { Metadata = new V1ObjectMeta { Name = "p" }, Spec = new V1PodSpec() }, null, 3600, ct));
        Assert.AreEqual(1, reader.Source.Resources.ConfigMaps.Count);

        Write("config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: [oops\n");
        await reader.RescanUntilAsync(() => reader.Source.Problems.ContainsKey("config.yaml"), ct);
        Assert.AreEqual("hello", (await resources.GetConfigMapAsync("default", "settings", ct))!.Data["greeting"], "a file turned invalid keeps its objects");

        File.Delete(Path.Combine(_dir, "config.yaml"));
        await reader.RescanUntilAsync(() => reader.Source.Resources.ConfigMaps.Count == 0, ct);
        Assert.IsNull(await resources.GetAsync("apps", "creds", ct));
    }
}
