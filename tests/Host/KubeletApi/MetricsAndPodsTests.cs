using System.Diagnostics.Metrics;
using System.Net;
using k8s;
using k8s.Models;
using Krustlet.Pipeline.Diagnostics;

namespace Krustlet.Host.Tests.KubeletApi;

/// <summary><c>/metrics</c> and <c>/pods</c>.</summary>
[TestClass]
public sealed class MetricsAndPodsTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Metrics_export_every_Krustlet_meter_in_Prometheus_text_and_nothing_else()
    {
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken);
        using var pipeline = new PipelineInstruments(null);
        using var node = new Meter("Krustlet.Test");
        using var other = new Meter("Other.Library");
        var pods = node.CreateUpDownCounter<long>("krustlet.test.pods", "{pod}");
        var foreign = other.CreateCounter<long>("other.library.calls");
        pipeline.Processed.Add(7, new KeyValuePair<string, object?>(KrustletTelemetry.StageTag, "Run"));
        pods.Add(3, new KeyValuePair<string, object?>("phase", "Running"));
        foreign.Add(1);
        using var client = host.Authorized();

        using var response = await client.GetAsync(new Uri("/metrics", UriKind.Relative), TestContext.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.CancellationToken);

        Assert.AreEqual(HttpStatusCode.OK, response.StatusCode);
        StringAssert.StartsWith(response.Content.Headers.ContentType?.MediaType, "text/plain");
        var processed = text.Split('\n').SingleOrDefault(l => l.StartsWith("krustlet_stage_processed", StringComparison.Ordinal) && l.Contains("krustlet_stage=\"Run\"", StringComparison.Ordinal));
        Assert.IsNotNull(processed, text);
        StringAssert.EndsWith(processed.Split(' ')[0] + " " + processed.Split(' ')[1], " 7", text);
        StringAssert.Contains(text, "# TYPE krustlet_stage_processed_total counter");
        StringAssert.Contains(text, "phase=\"Running\"");
        Assert.DoesNotContain("other_library", text, "meters outside Krustlet* are not exported");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Pods_lists_the_node_pods_as_a_PodList_with_their_status()
    {
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken);
        host.Pods.Set(TestPods.Pod("web", "uid-web", ["main", "sidecar"], restartCount: 2), TestPods.Pod("job", "uid-job", ["main"], _ => TestPods.Terminated));
        using var client = host.Authorized();

        var json = await client.GetStringAsync(new Uri("/pods", UriKind.Relative), TestContext.CancellationToken);
        var list = KubernetesJson.Deserialize<V1PodList>(json);

        Assert.AreEqual("v1", list.ApiVersion);
        Assert.AreEqual("PodList", list.Kind);
        CollectionAssert.AreEqual(new[] { "web", "job" }, list.Items.Select(p => p.Metadata.Name).ToArray());
        Assert.AreEqual(2, list.Items[0].Status.ContainerStatuses[1].RestartCount);
        Assert.IsNotNull(list.Items[0].Status.ContainerStatuses[0].State.Running);
        Assert.AreEqual("Completed", list.Items[1].Status.ContainerStatuses[0].State.Terminated.Reason);

        host.Pods.Set();
        Assert.IsEmpty(KubernetesJson.Deserialize<V1PodList>(await client.GetStringAsync(new Uri("/pods", UriKind.Relative), TestContext.CancellationToken)).Items);
    }
}
