using System.Collections.Concurrent;
using k8s.Models;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Engine;
using Krustlet.Stages.PodEvents;

namespace Krustlet.Stages.Tests;

internal static class Limits
{
    public const int Test = 30_000;
}

/// <summary>
/// A graph stage for tests: records what it saw; an optional hook can block or fail. In the run slot it
/// runs nothing: no pod has a runtime status, none can be evicted.
/// </summary>
internal sealed class RecordingStage(string name, Func<WorkItem<V1Pod>, CancellationToken, ValueTask<StageOutcome>>? apply = null) : IPodRuntime
{
    public string Name => name;

    public ConcurrentQueue<string> Seen { get; } = new();

    public async ValueTask<StageOutcome> ApplyAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
    {
        Seen.Enqueue($"apply {PodWatchDecoder.Describe(item.Value!)} rv{item.Value!.Metadata.ResourceVersion}");
        return apply is null ? StageOutcome.Continue : await apply(item, cancellationToken);
    }

    public ValueTask<StageOutcome> TeardownAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
    {
        Seen.Enqueue($"teardown {item.Key}");
        return ValueTask.FromResult(StageOutcome.Continue);
    }

    public Krustlet.Stages.Run.PodRuntimeStatus? Current(string uid) => null;

    public Task<bool> EvictAsync(string uid, string message) => Task.FromResult(false);

    public Task StopAllAsync(string reason, TimeSpan grace) => Task.CompletedTask;
}

internal static class TestPods
{
    public static PodStages Stages(Func<WorkItem<V1Pod>, CancellationToken, ValueTask<StageOutcome>>? imagePull = null) => new(
        new RecordingStage(StageNames.Admission),
        new RecordingStage(StageNames.ImagePull, imagePull),
        new RecordingStage(StageNames.Compile),
        new RecordingStage(StageNames.VolumeSetup),
        new RecordingStage(StageNames.Run));

    public static PipelineOptions Options() => new(StageNames.Defaults);

    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);
}
