using k8s.Models;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Replay;
using Krustlet.Stages.PodEvents;
using Krustlet.Stages.StatusReport;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Stages.Tests.Replay;

/// <summary>Recorded watch streams (tests/Stages/Fixtures) replayed through the real pod pipeline.</summary>
[TestClass]
public sealed class RecordedStreamReplayTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Create_update_delete_ends_with_the_deleted_pod_torn_down_and_the_other_at_its_latest_spec()
    {
        var writer = new InMemoryPodReportWriter();
        var stages = TestPods.Stages();
        await using var pipeline = PodPipeline.Start(stages, writer, TestPods.Options());
        var source = WatchStreamReplaySource<V1Pod>.FromFile(TestPods.Fixture("create-update-delete.ndjson"), PodWatchDecoder.Instance);

        await pipeline.RunAsync(source, TestContext.CancellationToken);
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        Assert.IsEmpty(source.Problems, string.Join("; ", source.Problems));
        Assert.AreEqual(6, source.Played, "the bookmark is not an event");

        var web = writer.Final("default-web-uid")!;
        Assert.AreEqual(PodReportKind.Deleted, web.Kind);
        Assert.AreEqual("web", web.Name);

        var job = writer.Final("default-job-uid")!;
        Assert.AreEqual(PodReportKind.Applied, job.Kind);
        Assert.AreEqual("105", job.ResourceVersion, "the latest spec of job is applied");

        var run = (RecordingStage)stages.Run;
        Assert.IsTrue(run.Seen.Contains("teardown default-web-uid"), "the deleted pod's containers are stopped");
        Assert.IsFalse(run.Seen.Contains("teardown default-job-uid"));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Many_pods_each_end_in_their_own_final_state_and_bad_lines_are_skipped_by_number()
    {
        var writer = new InMemoryPodReportWriter();
        var failing = new HashSet<string> { "ns-1/pod-007", "ns-2/pod-011" };
        var stages = TestPods.Stages(imagePull: (item, _) => ValueTask.FromResult(
            failing.Contains(PodWatchDecoder.Describe(item.Value!))
                ? StageOutcome.Fail("ErrImagePull", $"failed to pull image \"{item.Value!.Spec.Containers[0].Image}\": not found")
                : StageOutcome.Continue));
        await using var pipeline = PodPipeline.Start(stages, writer, TestPods.Options());
        var source = WatchStreamReplaySource<V1Pod>.FromFile(TestPods.Fixture("many-pods.ndjson"), PodWatchDecoder.Instance);

        await pipeline.RunAsync(source, TestContext.CancellationToken);
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        Assert.HasCount(2, source.Problems);
        Assert.AreEqual(151, source.Problems[0].Line);
        StringAssert.StartsWith(source.Problems[0].Message, "not valid JSON");
        Assert.AreEqual(new ReplayProblem(152, "ADDED pod default/no-uid has no metadata.uid"), source.Problems[1]);

        var timelines = writer.Timelines();
        Assert.HasCount(150, timelines);
        for (var i = 0; i < 150; i++)
        {
            var ns = $"ns-{i % 3}";
            var name = $"pod-{i:000}";
            var final = writer.Final($"{ns}-{name}-uid")!;
            Assert.AreEqual(name, final.Name);
            if (i % 5 == 0)
            {
                Assert.AreEqual(PodReportKind.Deleted, final.Kind, name);
            }
            else if (failing.Contains($"{ns}/{name}"))
            {
                Assert.AreEqual(PodReportKind.Failed, final.Kind, name);
                Assert.AreEqual("ErrImagePull", final.Reason);
                Assert.AreEqual($"ImagePull: failed to pull image \"registry.local/{name}:1.0\": not found", final.Message);
            }
            else
            {
                Assert.AreEqual(PodReportKind.Applied, final.Kind, name);
                if (i % 3 == 0)
                {
                    Assert.IsTrue(((RecordingStage)stages.Run).Seen.Any(s => s.StartsWith($"apply {ns}/{name} ", StringComparison.Ordinal)));
                }
            }
        }

        // Failed pods never reach the later stages.
        Assert.IsFalse(((RecordingStage)stages.Compile).Seen.Any(s => s.Contains("pod-007", StringComparison.Ordinal)));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_deletion_during_a_slow_stage_cancels_it_and_the_pod_is_torn_down()
    {
        var time = new FakeTimeProvider();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stages = TestPods.Stages(imagePull: async (item, ct) =>
        {
            if (item.Value!.Spec.Containers[0].Image.Contains("slow", StringComparison.Ordinal))
            {
                entered.SetResult();
                try
                {
                    await Task.Delay(Timeout.Infinite, ct);
                }
                catch (OperationCanceledException)
                {
                    cancelled.SetResult();
                    throw;
                }
            }

            return StageOutcome.Continue;
        });
        var writer = new InMemoryPodReportWriter();
        await using var pipeline = PodPipeline.Start(stages, writer, TestPods.Options(), time: time);
        var source = WatchStreamReplaySource<V1Pod>.FromFile(TestPods.Fixture("delete-during-slow-stage.ndjson"), PodWatchDecoder.Instance, ReplayPace.Recorded, time);

        var replay = pipeline.RunAsync(source, TestContext.CancellationToken);
        await entered.Task.WaitAsync(TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(0.1));

        // The deletion is recorded at 5 s: the slow pull is still running when it arrives.
        time.Advance(TimeSpan.FromSeconds(5));
        await replay;
        await cancelled.Task.WaitAsync(TestContext.CancellationToken);
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        var slow = writer.Timelines()["default-slow-uid"];
        CollectionAssert.AreEqual(new[] { PodReportKind.Deleted }, slow.Select(r => r.Kind).ToArray(), "the cancelled pull reports nothing; the deletion reports the end");
        Assert.AreEqual(PodReportKind.Applied, writer.Final("default-fast-uid")!.Kind, "the other pod was not held up by the slow one");
        CollectionAssert.AreEqual(
            new[] { "apply default/slow rv101", "teardown default-slow-uid" },
            ((RecordingStage)stages.ImagePull).Seen.Where(s => s.Contains("slow", StringComparison.Ordinal)).ToArray());
        Assert.IsFalse(((RecordingStage)stages.Compile).Seen.Any(s => s.StartsWith("apply default/slow", StringComparison.Ordinal)));
    }
}
