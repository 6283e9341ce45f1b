using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;

namespace Krustlet.Pipeline.Tests.Engine;

[TestClass]
public sealed class ShutdownTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Stop_lets_in_flight_work_finish_and_reports_events_left_waiting()
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stage = new DelegateStage<string>("Run", async (item, ct) =>
        {
            if (item.Key == "a")
            {
                entered.SetResult();
                await release.Task.WaitAsync(ct);
            }

            return StageOutcome.Continue;
        });
        var sink = new RecordingSink<string>();
        var pipeline = TestPipelines.Build([stage], sink, TestPipelines.Options(["Run"], shutdownTimeout: TimeSpan.FromSeconds(30)));

        await pipeline.SubmitAsync(PipelineEvent<string>.Upsert("a", "v1"), TestContext.CancellationToken);
        await entered.Task.WaitAsync(TestContext.CancellationToken);
        await pipeline.SubmitAsync(PipelineEvent<string>.Upsert("a", "v2"), TestContext.CancellationToken);

        var stopping = pipeline.StopAsync();
        await pipeline.SubmitAsync(PipelineEvent<string>.Upsert("late", "v1"), TestContext.CancellationToken);
        release.SetResult();
        var report = await stopping.WaitAsync(TestContext.CancellationToken);

        Assert.IsTrue(report.Clean);
        Assert.AreEqual(1, report.Drained);
        CollectionAssert.AreEqual(new[] { "a" }, report.AbandonedKeys.ToArray(), "v2 was waiting behind v1 and never ran");
        Assert.HasCount(1, sink.Results);
        Assert.AreEqual("v1", sink.Results[0].Item.Value);
        Assert.IsEmpty(sink.For("late"), "nothing is taken once stopping");
        Assert.IsTrue(pipeline.Completion.IsCompletedSuccessfully);
        await pipeline.DisposeAsync();
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task At_the_deadline_in_flight_work_is_cancelled_and_reported()
    {
        var time = new SignallingTimeProvider();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stage = new DelegateStage<string>("Run", async (_, ct) =>
        {
            entered.SetResult();
            await Task.Delay(Timeout.Infinite, ct);
            return StageOutcome.Continue;
        });
        var sink = new RecordingSink<string>();
        var options = TestPipelines.Options(["Run"], shutdownTimeout: TimeSpan.FromSeconds(30));
        await using var pipeline = TestPipelines.Build([stage], sink, options, time);

        await pipeline.SubmitAsync(PipelineEvent<string>.Upsert("spinner", "v1"), TestContext.CancellationToken);
        await entered.Task.WaitAsync(TestContext.CancellationToken);

        var timer = time.NextTimer;
        var stopping = pipeline.StopAsync();
        await timer.WaitAsync(TestContext.CancellationToken);
        Assert.IsFalse(stopping.IsCompleted, "work is given until the deadline");
        time.Advance(TimeSpan.FromSeconds(30));
        var report = await stopping.WaitAsync(TestContext.CancellationToken);

        CollectionAssert.AreEqual(new[] { "spinner" }, report.CancelledKeys.ToArray());
        Assert.IsEmpty(report.StuckKeys);
        Assert.IsFalse(report.Clean);
        Assert.AreEqual(WorkStatus.Cancelled, sink.For("spinner")[0].Status);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Work_that_ignores_cancellation_is_reported_stuck()
    {
        var time = new SignallingTimeProvider();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stage = new DelegateStage<string>("Run", async (_, _) =>
        {
            entered.SetResult();
            await release.Task;
            return StageOutcome.Continue;
        });
        var pipeline = TestPipelines.Build([stage], new RecordingSink<string>(), TestPipelines.Options(["Run"]), time);
        await pipeline.SubmitAsync(PipelineEvent<string>.Upsert("stubborn", "v1"), TestContext.CancellationToken);
        await entered.Task.WaitAsync(TestContext.CancellationToken);

        var deadline = time.NextTimer;
        var stopping = pipeline.StopAsync();
        await deadline.WaitAsync(TestContext.CancellationToken);
        var grace = time.NextTimer;
        time.Advance(TimeSpan.FromSeconds(30));
        await grace.WaitAsync(TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(5));
        var report = await stopping.WaitAsync(TestContext.CancellationToken);

        CollectionAssert.AreEqual(new[] { "stubborn" }, report.StuckKeys.ToArray());
        release.SetResult();
        await pipeline.Completion.WaitAsync(TestContext.CancellationToken);
        await pipeline.DisposeAsync();
    }
}
