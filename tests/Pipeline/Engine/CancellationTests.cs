using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;

namespace Krustlet.Pipeline.Tests.Engine;

[TestClass]
public sealed class CancellationTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Deleting_a_pod_cancels_its_in_flight_work_and_then_tears_it_down()
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var observedCancellation = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var teardowns = new List<string>();
        IStage<string> Stage(string name, bool slow) => new DelegateStage<string>(
            name,
            async (item, ct) =>
            {
                if (slow && item.Value == "slow")
                {
                    entered.SetResult();
                    try
                    {
                        await Task.Delay(Timeout.Infinite, ct);
                    }
                    catch (OperationCanceledException)
                    {
                        observedCancellation.SetResult();
                        throw;
                    }
                }

                return StageOutcome.Continue;
            },
            (item, _) =>
            {
                lock (teardowns)
                {
                    teardowns.Add($"{name}:{item.Key}");
                }

                return ValueTask.FromResult(StageOutcome.Continue);
            });

        var sink = new RecordingSink<string>();
        await using var pipeline = TestPipelines.Build([Stage("Pull", slow: true), Stage("Run", slow: false)], sink, TestPipelines.Options(["Pull", "Run"]));

        await pipeline.SubmitAsync(PipelineEvent<string>.Upsert("a", "slow"), TestContext.CancellationToken);
        await entered.Task.WaitAsync(TestContext.CancellationToken);
        await pipeline.SubmitAsync(PipelineEvent<string>.Upsert("b", "fast"), TestContext.CancellationToken);
        await pipeline.SubmitAsync(PipelineEvent<string>.Delete("a"), TestContext.CancellationToken);

        await observedCancellation.Task.WaitAsync(TestContext.CancellationToken);
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        var a = sink.For("a");
        Assert.HasCount(2, a);
        Assert.AreEqual(WorkStatus.Cancelled, a[0].Status);
        Assert.AreEqual("Pull", a[0].Item.CancelledIn);
        Assert.AreEqual(EventKind.Delete, a[1].Kind);
        Assert.AreEqual(WorkStatus.Succeeded, a[1].Status);
        CollectionAssert.AreEqual(new[] { "Run", "Pull" }, a[1].Item.Trail.ToArray(), "teardown runs the stages in reverse");
        CollectionAssert.AreEqual(new[] { "Run:a", "Pull:a" }, teardowns.ToArray());

        var b = sink.For("b");
        Assert.HasCount(1, b);
        Assert.AreEqual(WorkStatus.Succeeded, b[0].Status, "another pod is untouched");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_stage_that_never_started_an_item_is_skipped_once_the_item_is_cancelled()
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondStageCalls = 0;
        var first = new DelegateStage<string>("First", async (_, _) =>
        {
            entered.TrySetResult();
            await release.Task; // ignores cancellation on purpose
            return StageOutcome.Continue;
        });
        var second = new DelegateStage<string>("Second", (_, _) =>
        {
            Interlocked.Increment(ref secondStageCalls);
            return ValueTask.FromResult(StageOutcome.Continue);
        });
        var sink = new RecordingSink<string>();
        await using var pipeline = TestPipelines.Build([first, second], sink, TestPipelines.Options(["First", "Second"]));

        await pipeline.SubmitAsync(PipelineEvent<string>.Upsert("a", "v1"), TestContext.CancellationToken);
        await entered.Task.WaitAsync(TestContext.CancellationToken);
        await pipeline.SubmitAsync(PipelineEvent<string>.Delete("a"), TestContext.CancellationToken);
        release.SetResult();
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        var results = sink.For("a");
        Assert.AreEqual(WorkStatus.Cancelled, results[0].Status);
        Assert.AreEqual("Second", results[0].Item.CancelledIn);
        Assert.AreEqual(0, secondStageCalls, "an upsert cancelled by a deletion goes no further on the apply path");
        Assert.AreEqual(EventKind.Delete, results[1].Kind);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_deletion_waiting_behind_an_abandoned_send_still_runs()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stage = new DelegateStage<string>("Run", async (item, ct) =>
        {
            entered.TrySetResult();
            await release.Task;
            return StageOutcome.Continue;
        });
        var sink = new RecordingSink<string>();
        await using var pipeline = TestPipelines.Build([stage], sink, TestPipelines.Options(["Run"], parallelism: 1, capacity: 1));

        await pipeline.SubmitAsync(PipelineEvent<string>.Upsert("a", "v1"), TestContext.CancellationToken);
        await entered.Task.WaitAsync(TestContext.CancellationToken);

        // The stage is full: b's send waits. Its sender gives up while b's deletion waits behind it.
        using var giveUp = new CancellationTokenSource();
        var sending = pipeline.SubmitAsync(PipelineEvent<string>.Upsert("b", "v1"), giveUp.Token).AsTask();
        Assert.IsFalse(sending.IsCompleted);
        await pipeline.SubmitAsync(PipelineEvent<string>.Delete("b"), TestContext.CancellationToken);
        await giveUp.CancelAsync();
        await Assert.ThrowsAsync<OperationCanceledException>(() => sending);

        await sink.WaitForCountAsync(1, TestContext.CancellationToken);
        var b = sink.For("b");
        Assert.HasCount(1, b);
        Assert.AreEqual(EventKind.Delete, b[0].Kind, "the deletion ran on the teardown path");

        release.SetResult();
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);
        Assert.HasCount(1, sink.For("a"));
    }
}
