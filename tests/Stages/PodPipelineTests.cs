using System.Collections.Concurrent;
using System.Diagnostics;
using k8s.Models;
using Krustlet.Pipeline.Diagnostics;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.Run;
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

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Substituted_stages_get_reentry_eviction_and_reporting_from_the_context_they_are_built_with()
    {
        var writer = new InMemoryPodReportWriter();
        var running = new PodRuntimeStatus(PodPhase.Running, null, null, TimeProvider.System.GetUtcNow(), [], []);
        var succeeded = running with { Phase = PodPhase.Succeeded };
        var reentered = new TaskCompletionSource<EventOrigin>(TaskCreationOptions.RunContinuationsAsynchronously);
        ReportingRuntime? runtime = null;
        await using var pipeline = PodPipeline.Start(
            context =>
            {
                runtime = new ReportingRuntime(context, running);
                return TestPods.Stages() with
                {
                    ImagePull = new RecordingStage(StageNames.ImagePull, (item, _) =>
                    {
                        if (item.Origin == EventOrigin.Source)
                        {
                            Assert.IsTrue(context.Reenter(item.Key, "try again"), "a pod in flight can be re-entered");
                        }
                        else
                        {
                            reentered.TrySetResult(item.Origin);
                        }

                        return ValueTask.FromResult(StageOutcome.Continue);
                    }),
                    VolumeSetup = new RecordingStage(StageNames.VolumeSetup, async (item, _) =>
                    {
                        Assert.IsTrue(await context.EvictAsync(item.Key, "over its limit"), "the run slot runs the pod");
                        return StageOutcome.Continue;
                    }),
                    Run = runtime,
                };
            },
            writer,
            TestPods.Options());

        await pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert("u-1", Pod("u-1")), TestContext.CancellationToken);

        Assert.AreEqual(EventOrigin.Reentry, await reentered.Task.WaitAsync(TestContext.CancellationToken), "the stage's re-entry ran the pod again");
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);
        var applied = writer.Final("u-1")!;
        Assert.AreEqual(PodReportKind.Applied, applied.Kind);
        Assert.AreSame(running, applied.Runtime, "the status stage read the run slot's view when it wrote the graph's report");
        Assert.Contains(("u-1", "over its limit"), runtime!.Evicted);

        await runtime.ExitAsync(Pod("u-1"), succeeded, TestContext.CancellationToken);
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        var exited = writer.Final("u-1")!;
        Assert.AreEqual(PodReportOrigin.Runtime, exited.Origin, "the run slot's report reached the writer");
        Assert.AreSame(succeeded, exited.Runtime);
    }

    /// <summary>A run slot that runs nothing, but is read, reports and is evicted as a run stage would, through its context.</summary>
    private sealed class ReportingRuntime(IPodStageContext context, PodRuntimeStatus running) : IPodRuntime
    {
        private PodRuntimeStatus? _current;

        public string Name => StageNames.Run;

        public System.Collections.Concurrent.ConcurrentQueue<(string Uid, string Message)> Evicted { get; } = new();

        public ValueTask<StageOutcome> ApplyAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
        {
            _current = running;
            return ValueTask.FromResult(StageOutcome.Continue);
        }

        /// <summary>The pod's containers ended: published as the run stage publishes a change, outside the graph.</summary>
        public ValueTask ExitAsync(V1Pod pod, PodRuntimeStatus status, CancellationToken cancellationToken)
        {
            _current = status;
            return context.PublishAsync(new PodReport(pod.Metadata.Uid, pod.Metadata.NamespaceProperty, pod.Metadata.Name, PodReportKind.Updated, PodReportOrigin.Runtime, null, null, pod.Metadata.ResourceVersion, TimeProvider.System.GetUtcNow(), status), cancellationToken);
        }

        public ValueTask<StageOutcome> TeardownAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken) => ValueTask.FromResult(StageOutcome.Continue);

        public PodRuntimeStatus? Current(string uid) => _current;

        public Task<bool> EvictAsync(string uid, string message)
        {
            Evicted.Enqueue((uid, message));
            return Task.FromResult(true);
        }

        public Task StopAllAsync(string reason, TimeSpan grace) => Task.CompletedTask;
    }
}
