using k8s.Models;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.Support;

/// <summary>Report writer that lets a test wait for a report matching a condition.</summary>
internal sealed class ObservingWriter : IPodReportWriter
{
    private readonly Lock _lock = new();
    private readonly List<(Func<PodReport, bool> Match, TaskCompletionSource<PodReport> Seen)> _waiters = [];

    public InMemoryPodReportWriter Reports { get; } = new();

    public async ValueTask WriteAsync(PodReport report, CancellationToken cancellationToken)
    {
        await Reports.WriteAsync(report, cancellationToken);
        lock (_lock)
        {
            foreach (var waiter in _waiters.Where(w => w.Match(report)).ToList())
            {
                waiter.Seen.TrySetResult(report);
                _waiters.Remove(waiter);
            }
        }
    }

    /// <summary>Completes with the first report, already written or to come, that matches.</summary>
    public Task<PodReport> WaitForAsync(string uid, Func<PodReport, bool> match, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (Reports.Timelines().GetValueOrDefault(uid)?.FirstOrDefault(match) is { } seen)
            {
                return Task.FromResult(seen);
            }

            var waiter = new TaskCompletionSource<PodReport>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((r => r.Uid == uid && match(r), waiter));
            return waiter.Task.WaitAsync(cancellationToken);
        }
    }
}

/// <summary>Stands in for the image pull stage: image references map to module files built for the test.</summary>
internal sealed class LocalImages(IReadOnlyDictionary<string, string> modules) : IStage<V1Pod>
{
    public string Name => StageNames.ImagePull;

    public ValueTask<StageOutcome> ApplyAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
    {
        var pulled = new Dictionary<string, PulledImage>();
        foreach (var container in PodContainers.All(item.Value!))
        {
            if (!modules.TryGetValue(container.Image, out var path))
            {
                return ValueTask.FromResult(StageOutcome.Fail("ErrImagePull", $"image {container.Image} not found"));
            }

            pulled[container.Name] = new PulledImage(container.Image, WasmFixtures.Digest(path), path, Path.GetFileName(path), ImageDefaults.None);
        }

        item.Set(new PulledImages(pulled));
        return ValueTask.FromResult(StageOutcome.Continue);
    }

    public ValueTask<StageOutcome> TeardownAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken) => ValueTask.FromResult(StageOutcome.Continue);
}

/// <summary>Keeps the events a stage records, for tests.</summary>
internal sealed class RecordedEvents : Krustlet.Stages.PodEvents.IPodEventRecorder
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<(string Pod, bool Warning, string Reason, string Message)> _events = new();

    public IReadOnlyList<(string Pod, bool Warning, string Reason, string Message)> All => [.. _events];

    /// <summary>Runs on the recording thread after each event is kept: a test's gate on a step of the run stage.</summary>
    public Action<string>? OnRecorded { get; set; }

    public void Record(V1Pod pod, bool warning, string reason, string message, string? container = null)
    {
        _events.Enqueue((pod.Metadata.Name, warning, reason, message));
        OnRecorded?.Invoke(reason);
    }
}

/// <summary>A pod pipeline with the real compile and run stages on a fake clock.</summary>
internal sealed class RunHarness : IAsyncDisposable
{
    private static readonly WasmEngineHost Host = new(new WasmEngineOptions());

    private readonly string _root;
    private readonly bool _ownsRoot;

    /// <param name="images">Image references and the module files they stand for.</param>
    /// <param name="slots">The executor pool's size.</param>
    /// <param name="root">A data directory to use (and keep): a second harness on it plays a restarted agent.</param>
    /// <param name="saveState">Save pods' runtime state under the root, as the agent does.</param>
    /// <param name="admission">The admission stage (default: one that admits everything).</param>
    public RunHarness(IReadOnlyDictionary<string, string> images, int slots = 8, string? root = null, bool saveState = false, IStage<V1Pod>? admission = null)
    {
        _ownsRoot = root is null;
        _root = root ?? Directory.CreateTempSubdirectory("krustlet-pods-").FullName;
        Cache = new CompileCache(Host, Path.Combine(_root, "cache"));
        Pool = new ExecutorPool(Host, slots, Time);
        State = saveState ? new PodStateStore(Path.Combine(_root, "state")) : null;
        RunStage? run = null;
        Pipeline = PodPipeline.Start(
            context =>
            {
                run = new RunStage(Pool, new RunOptions(Path.Combine(_root, "logs")) { State = State }, context, Time, events: Events);
                return new PodStages(admission ?? new RecordingStage(StageNames.Admission), new LocalImages(images), new CompileStage(Cache), new RecordingStage(StageNames.VolumeSetup), run);
            },
            Writer,
            TestPods.Options(),
            time: Time);
        Run = run!;
    }

    public SignallingTimeProvider Time { get; } = new();

    public RecordedEvents Events { get; } = new();

    public ObservingWriter Writer { get; } = new();

    public CompileCache Cache { get; }

    public ExecutorPool Pool { get; }

    public RunStage Run { get; }

    public PodPipeline Pipeline { get; }

    public string LogRoot => Path.Combine(_root, "logs");

    public PodStateStore? State { get; }

    public static V1Pod Pod(string name, string restartPolicy = "Never", string[]? images = null, string[]? initImages = null, long? activeDeadlineSeconds = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default", Uid = $"uid-{name}", ResourceVersion = "1" },
        Spec = new V1PodSpec
        {
            RestartPolicy = restartPolicy,
            ActiveDeadlineSeconds = activeDeadlineSeconds,
            TerminationGracePeriodSeconds = 30,
            InitContainers = initImages is null ? null : [.. initImages.Select((image, i) => new V1Container { Name = $"init-{i}", Image = image })],
            Containers = [.. (images ?? ["hello"]).Select((image, i) => new V1Container { Name = i == 0 ? "main" : $"app-{i}", Image = image })],
        },
    };

    public ValueTask SubmitAsync(V1Pod pod, CancellationToken cancellationToken) =>
        Pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), cancellationToken);

    public ValueTask DeleteAsync(V1Pod pod, CancellationToken cancellationToken) =>
        Pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Delete(pod.Metadata.Uid, pod), cancellationToken);

    public Task<PodReport> WaitForAsync(V1Pod pod, Func<PodRuntimeStatus, bool> match, CancellationToken cancellationToken) =>
        Writer.WaitForAsync(pod.Metadata.Uid, r => r.Runtime is { } runtime && match(runtime), cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await Pipeline.DisposeAsync();
        Pool.Dispose();
        if (_ownsRoot)
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}
