using System.Collections.Concurrent;
using System.Diagnostics;
using Krustlet.Pipeline.Diagnostics;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Krustlet.Pipeline.Tests.Diagnostics;

[TestClass]
public sealed class ObservabilityTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Each_stage_reports_processed_failed_in_flight_duration_and_queue_depth()
    {
        using var instruments = new PipelineInstruments(null);
        using var processed = new MetricCollector<long>(instruments.Processed);
        using var failed = new MetricCollector<long>(instruments.Failed);
        using var duration = new MetricCollector<double>(instruments.Duration);
        using var inFlight = new MetricCollector<long>(instruments.InFlight);
        using var events = new MetricCollector<long>(instruments.Events);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pull = new DelegateStage<int>("ImagePull", async (item, ct) =>
        {
            if (item.Value == 0)
            {
                entered.SetResult();
                await gate.Task.WaitAsync(ct);
            }

            return item.Value == 2 ? StageOutcome.Fail("ErrImagePull", "no such image") : StageOutcome.Continue;
        });
        await using var pipeline = TestPipelines.Build([pull, new DelegateStage<int>("Run")], new RecordingSink<int>(), TestPipelines.Options(["ImagePull", "Run"], parallelism: 1, capacity: 8), instruments: instruments);

        for (var i = 0; i < 3; i++)
        {
            await pipeline.SubmitAsync(PipelineEvent<int>.Upsert($"p{i}", i), TestContext.CancellationToken);
        }

        await entered.Task.WaitAsync(TestContext.CancellationToken);
        using (var depth = new MetricCollector<int>(instruments.Meter, "krustlet.stage.queue_depth"))
        {
            depth.RecordObservableInstruments();
            var pullDepth = depth.GetMeasurementSnapshot().Single(m => Equals(m.Tags[KrustletTelemetry.StageTag], "ImagePull") && Equals(m.Tags[KrustletTelemetry.PathTag], KrustletTelemetry.ApplyPath));
            Assert.AreEqual(2, pullDepth.Value, "two items wait behind the one in progress");
        }

        gate.SetResult();
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        Assert.AreEqual(3, processed.GetMeasurementSnapshot().Where(m => Equals(m.Tags[KrustletTelemetry.StageTag], "ImagePull")).Sum(m => m.Value));
        Assert.AreEqual(2, processed.GetMeasurementSnapshot().Where(m => Equals(m.Tags[KrustletTelemetry.StageTag], "Run")).Sum(m => m.Value));
        Assert.AreEqual(1, failed.GetMeasurementSnapshot().Single().Value);
        Assert.AreEqual("ImagePull", failed.GetMeasurementSnapshot().Single().Tags[KrustletTelemetry.StageTag]);
        Assert.HasCount(5, duration.GetMeasurementSnapshot());
        Assert.AreEqual(0, inFlight.GetMeasurementSnapshot().Sum(m => m.Value), "every +1 has its -1");
        Assert.AreEqual(3, events.GetMeasurementSnapshot().Count(m => Equals(m.Tags["disposition"], "dispatched")));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Each_stage_opens_a_span_tagged_with_the_key()
    {
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == KrustletTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (a.GetTagItem(KrustletTelemetry.KeyTag) as string == "traced-pod")
                {
                    spans.Enqueue(a);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        var builder = new PipelineBuilder<int>()
            .AddStage(new DelegateStage<int>("Admission"))
            .AddStage(new DelegateStage<int>("Run"))
            .WithSink(TestPipelines.Sink, new RecordingSink<int>())
            .WithTraceEnrichment((item, activity) => activity.SetTag("test.value", item.Value));
        await using var pipeline = builder.Build(TestPipelines.Options(["Admission", "Run"]));

        await pipeline.SubmitAsync(PipelineEvent<int>.Upsert("traced-pod", 7), TestContext.CancellationToken);
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        CollectionAssert.AreEqual(new[] { "krustlet.stage.Admission", "krustlet.stage.Run" }, spans.Select(s => s.OperationName).ToArray());
        Assert.IsTrue(spans.All(s => (int)s.GetTagItem("test.value")! == 7));
        Assert.IsTrue(spans.All(s => (string)s.GetTagItem(KrustletTelemetry.PathTag)! == KrustletTelemetry.ApplyPath));
    }
}
