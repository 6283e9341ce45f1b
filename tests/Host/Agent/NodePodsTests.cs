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
}
