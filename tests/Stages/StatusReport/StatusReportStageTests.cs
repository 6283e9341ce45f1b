using Krustlet.Pipeline.Configuration;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.StatusReport;

[TestClass]
public sealed class StatusReportStageTests
{
    public TestContext TestContext { get; set; } = null!;

    private static PodReport Report(PodReportKind kind, PodReportOrigin origin, string? reason = null) =>
        new("u-1", "default", "web", kind, origin, reason, null, "1", DateTimeOffset.UnixEpoch);

    [TestMethod]
    public void A_runtime_update_never_replaces_a_waiting_final_report()
    {
        var final = Report(PodReportKind.Deleted, PodReportOrigin.Pipeline);

        Assert.AreSame(final, PodReport.Merge(final, Report(PodReportKind.Updated, PodReportOrigin.Runtime, "Exited")));
    }

    [TestMethod]
    public void Otherwise_the_newer_report_wins()
    {
        var newer = Report(PodReportKind.Applied, PodReportOrigin.Pipeline);

        Assert.AreSame(newer, PodReport.Merge(Report(PodReportKind.Deleted, PodReportOrigin.Pipeline), newer), "a pod that comes back");
        var runtime = Report(PodReportKind.Updated, PodReportOrigin.Runtime);
        Assert.AreSame(runtime, PodReport.Merge(Report(PodReportKind.Applied, PodReportOrigin.Pipeline), runtime));
    }

    /// <summary>A writer that blocks on its first report so a burst can pile up behind it.</summary>
    private sealed class GatedWriter : IPodReportWriter
    {
        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public InMemoryPodReportWriter Inner { get; } = new();

        public async ValueTask WriteAsync(PodReport report, CancellationToken cancellationToken)
        {
            Entered.TrySetResult();
            await Release.Task.WaitAsync(cancellationToken);
            await Inner.WriteAsync(report, cancellationToken);
        }
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Updates_from_outside_the_graph_share_the_per_pod_queue()
    {
        var writer = new GatedWriter();
        await using var stage = new StatusReportStage(writer, new StageOptions(2, 8));

        await stage.PublishAsync(Report(PodReportKind.Updated, PodReportOrigin.Runtime, "first"), TestContext.CancellationToken);
        await writer.Entered.Task.WaitAsync(TestContext.CancellationToken);
        await stage.PublishAsync(Report(PodReportKind.Updated, PodReportOrigin.Runtime, "second"), TestContext.CancellationToken);
        await stage.PublishAsync(Report(PodReportKind.Deleted, PodReportOrigin.Pipeline, "final"), TestContext.CancellationToken);
        await stage.PublishAsync(Report(PodReportKind.Updated, PodReportOrigin.Runtime, "too late"), TestContext.CancellationToken);
        writer.Release.SetResult();
        await stage.WaitForIdleAsync(TestContext.CancellationToken);

        CollectionAssert.AreEqual(new[] { "first", "final" }, writer.Inner.Timelines()["u-1"].Select(r => r.Reason).ToArray());
    }
}
