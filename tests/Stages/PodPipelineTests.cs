using System.Collections.Concurrent;
using System.Diagnostics;
using k8s.Models;
using Krustlet.Pipeline.Diagnostics;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests;

[TestClass]
public sealed class PodPipelineTests
{
    public TestContext TestContext { get; set; } = null!;

    private static V1Pod Pod(string uid) => new()
    {
        Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "shop", Uid = uid, ResourceVersion = "1" },
        Spec = new V1PodSpec { Containers = [new V1Container { Name = "main", Image = "r/web:1" }] },
    };

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Every_stage_span_carries_the_pod_namespace_name_and_uid()
    {
        var uid = Guid.NewGuid().ToString();
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == KrustletTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (a.GetTagItem(PodPipeline.PodUidTag) as string == uid)
                {
                    spans.Enqueue(a);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        await using var pipeline = PodPipeline.Start(TestPods.Stages(), new InMemoryPodReportWriter(), TestPods.Options());

        await pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(uid, Pod(uid)), TestContext.CancellationToken);
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        CollectionAssert.AreEqual(StageNames.GraphStages.Select(s => $"krustlet.stage.{s}").ToArray(), spans.Select(s => s.OperationName).ToArray());
        foreach (var span in spans)
        {
            Assert.AreEqual("shop", span.GetTagItem(PodPipeline.NamespaceTag));
            Assert.AreEqual("web", span.GetTagItem(PodPipeline.PodNameTag));
        }
    }

    [TestMethod]
    public void A_stage_in_the_wrong_slot_is_refused()
    {
        var stages = TestPods.Stages() with { Compile = new RecordingStage("Compiler") };

        var ex = Assert.ThrowsExactly<ArgumentException>(() => PodPipeline.Start(stages, new InMemoryPodReportWriter(), TestPods.Options()));

        StringAssert.StartsWith(ex.Message, "The Compile slot holds a stage named 'Compiler'.");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Stop_drains_the_deletion_in_flight_and_writes_its_final_report()
    {
        var writer = new InMemoryPodReportWriter();
        var pipeline = PodPipeline.Start(TestPods.Stages(), writer, TestPods.Options());
        await pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert("u-1", Pod("u-1")), TestContext.CancellationToken);
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);
        await pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Delete("u-1"), TestContext.CancellationToken);

        var shutdown = await pipeline.StopAsync().WaitAsync(TestContext.CancellationToken);

        Assert.IsTrue(shutdown.Graph.Clean);
        Assert.IsEmpty(shutdown.UnwrittenReports);
        Assert.AreEqual(PodReportKind.Deleted, writer.Final("u-1")!.Kind);
        await pipeline.DisposeAsync();
    }
}
