using System.Runtime.CompilerServices;
using k8s.Models;
using Krustlet.Host.Agent;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Host.Tests.Agent;

/// <summary>The agent's view of its pods: what the source delivered, with the status its reports give.</summary>
[TestClass]
public sealed class NodePodsTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed class ListSource(params PipelineEvent<V1Pod>[] events) : IEventSource<V1Pod>
    {
        public string Name => "list";

        public async IAsyncEnumerable<PipelineEvent<V1Pod>> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            foreach (var evt in events)
            {
                await Task.Yield();
                yield return evt;
            }
        }
    }

    [TestMethod]
    [Timeout(10_000, CooperativeCancellation = true)]
    public async Task A_pod_being_deleted_shows_its_deletion_time_on_a_copy_until_its_final_report()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 11, 26, 8, 0, 0, TimeSpan.Zero));
        using var pods = new NodePods(null, "10.0.0.7", time);
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "default", Uid = "uid-web", Labels = new Dictionary<string, string> { ["app"] = "web" }, Finalizers = ["example.com/keep"] },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "main", Image = "example/web:v1" }] },
        };

        await foreach (var _ in pods.Observe(new ListSource(PipelineEvent<V1Pod>.Upsert("uid-web", pod), PipelineEvent<V1Pod>.Delete("uid-web", pod))).ReadAsync(TestContext.CancellationToken))
        {
        }

        var shown = pods.Pods().Single();
        Assert.AreEqual(time.GetUtcNow().UtcDateTime, shown.Metadata.DeletionTimestamp);
        Assert.AreEqual("web", shown.Metadata.Labels["app"]);
        CollectionAssert.AreEqual(new[] { "example.com/keep" }, shown.Metadata.Finalizers.ToArray());
        Assert.AreEqual("Pending", shown.Status.Phase);
        Assert.IsNull(pod.Metadata.DeletionTimestamp, "the source's pod object is not changed");

        await pods.WriteAsync(new PodReport("uid-web", "default", "web", PodReportKind.Deleted, PodReportOrigin.Pipeline, null, null, "1", time.GetUtcNow()), TestContext.CancellationToken);
        Assert.IsEmpty(pods.Pods());
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task Ten_thousand_pods_are_counted_by_phase_and_listed_a_page_at_a_time_with_a_bounded_timeline()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 11, 26, 8, 0, 0, TimeSpan.Zero));
        using var pods = new NodePods(null, "10.0.0.7", time);
        var events = Enumerable.Range(0, 10_000).Select(i => PipelineEvent<V1Pod>.Upsert($"uid-{i:D5}", new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = $"pod-{i:D5}", NamespaceProperty = "default", Uid = $"uid-{i:D5}" },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "main", Image = "example/web:v1" }] },
        })).ToArray();
        await foreach (var _ in pods.Observe(new ListSource(events)).ReadAsync(TestContext.CancellationToken))
        {
        }

        // Half of them fail; the first one is reported many times.
        for (var i = 0; i < 10_000; i += 2)
        {
            await pods.WriteAsync(new PodReport($"uid-{i:D5}", "default", $"pod-{i:D5}", PodReportKind.Failed, PodReportOrigin.Pipeline, "Invalid", "bad", "1", time.GetUtcNow()), TestContext.CancellationToken);
        }

        for (var n = 0; n < 100; n++)
        {
            await pods.WriteAsync(new PodReport("uid-00000", "default", "pod-00000", PodReportKind.Failed, PodReportOrigin.Pipeline, "Invalid", $"bad {n}", "1", time.GetUtcNow()), TestContext.CancellationToken);
        }

        var counts = pods.CountByPhase();
        Assert.AreEqual(5_000, counts["Failed"]);
        Assert.AreEqual(5_000, counts["Pending"]);
        Assert.AreEqual(0, counts["Running"]);

        var (total, page) = pods.Page("Pending", 3, 50);
        Assert.AreEqual(5_000, total);
        CollectionAssert.AreEqual(Enumerable.Range(150, 50).Select(i => $"pod-{(2 * i) + 1:D5}").ToArray(), page.Select(p => p.Name).ToArray(), "oldest first, one page");

        var detail = pods.Detail("uid-00000");
        Assert.IsNotNull(detail);
        Assert.HasCount(NodePods.TimelineLength, detail.Value.Timeline, "a pod keeps its latest reports only");
        Assert.AreEqual("bad 99", detail.Value.Timeline[^1].Message);
        CollectionAssert.AreEqual(new[] { "main" }, detail.Value.Containers.ToArray());
    }
}
