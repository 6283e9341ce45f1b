using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;

namespace Krustlet.Pipeline.Tests.Engine;

[TestClass]
public sealed class FaultIsolationTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Failures_are_values_that_skip_later_stages_and_leave_other_pods_running()
    {
        var laterStage = new List<string>();
        var pull = new DelegateStage<string>("ImagePull", (item, _) => item.Value switch
        {
            "throws" => throw new InvalidOperationException("registry exploded"),
            "fails" => ValueTask.FromResult(StageOutcome.Fail("ErrImagePull", "image \"nope\" not found")),
            "done" => ValueTask.FromResult(StageOutcome.Done),
            _ => ValueTask.FromResult(StageOutcome.Continue),
        });
        var run = new DelegateStage<string>("Run", (item, _) =>
        {
            lock (laterStage)
            {
                laterStage.Add(item.Key);
            }

            return ValueTask.FromResult(StageOutcome.Continue);
        });
        var sink = new RecordingSink<string>();
        await using var pipeline = TestPipelines.Build([pull, run], sink, TestPipelines.Options(["ImagePull", "Run"], parallelism: 1, capacity: 4));

        foreach (var (key, value) in new[] { ("p1", "ok"), ("p2", "throws"), ("p3", "fails"), ("p4", "done"), ("p5", "ok") })
        {
            await pipeline.SubmitAsync(PipelineEvent<string>.Upsert(key, value), TestContext.CancellationToken);
        }

        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        Assert.AreEqual(WorkStatus.Failed, sink.For("p2")[0].Status);
        Assert.AreEqual(new StageFailure("ImagePull", StageFailure.UnexpectedErrorReason, "ImagePull stage: InvalidOperationException: registry exploded"), sink.For("p2")[0].Failure);
        Assert.AreEqual(new StageFailure("ImagePull", "ErrImagePull", "image \"nope\" not found"), sink.For("p3")[0].Failure);
        Assert.AreEqual(WorkStatus.Succeeded, sink.For("p4")[0].Status);
        CollectionAssert.AreEquivalent(new[] { "p1", "p5" }, laterStage.ToArray(), "failed and finished items skip later stages");
        Assert.AreEqual(WorkStatus.Succeeded, sink.For("p5")[0].Status, "the pod after a failure still runs");
        Assert.IsFalse(pipeline.Completion.IsCompleted, "no block faulted");

        // The graph keeps working after the failures: the failed pod can be retried.
        Assert.IsTrue(pipeline.Reenter("p3", "retry"));
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);
        Assert.HasCount(2, sink.For("p3"));
        Assert.AreEqual(EventOrigin.Reentry, sink.For("p3")[1].Item.Origin);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_throwing_sink_loses_that_result_only()
    {
        var sink = new RecordingSink<string>
        {
            OnWrite = (result, _) => result.Key == "bad" ? throw new IOException("disk full") : ValueTask.CompletedTask,
        };
        await using var pipeline = TestPipelines.Build([new DelegateStage<string>("Run")], sink, TestPipelines.Options(["Run"]));

        await pipeline.SubmitAsync(PipelineEvent<string>.Upsert("bad", "v1"), TestContext.CancellationToken);
        await pipeline.SubmitAsync(PipelineEvent<string>.Upsert("good", "v1"), TestContext.CancellationToken);
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        Assert.HasCount(1, sink.For("good"));
        Assert.IsEmpty(sink.For("bad"));

        // The failed key is released: its next event still flows.
        await pipeline.SubmitAsync(PipelineEvent<string>.Upsert("bad", "v2"), TestContext.CancellationToken);
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);
        Assert.AreEqual(0, pipeline.InFlight);
    }
}
