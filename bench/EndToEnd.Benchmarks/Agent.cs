using k8s.Models;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Events;
using Krustlet.Stages;
using Krustlet.Stages.Admission;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;
using Krustlet.Stages.Run;
using Krustlet.Stages.VolumeSetup;

namespace Krustlet.EndToEnd.Benchmarks;

/// <summary>The pods' cluster resources: none (the benchmark pods have no configMaps, secrets or tokens).</summary>
internal sealed class NoResources : IPodResources
{
    public ValueTask<V1ConfigMap?> GetConfigMapAsync(string @namespace, string name, CancellationToken cancellationToken) => ValueTask.FromResult<V1ConfigMap?>(null);

    public ValueTask<V1Secret?> GetAsync(string @namespace, string name, CancellationToken cancellationToken) => ValueTask.FromResult<V1Secret?>(null);

    public ValueTask<string> RequestTokenAsync(V1Pod pod, string? audience, long expirationSeconds, CancellationToken cancellationToken) => ValueTask.FromResult("bench-token");
}

/// <summary>How the benchmark composes the agent.</summary>
/// <param name="DataDirectory">Images, compile cache, pod directories and logs.</param>
/// <param name="MaxPods">Admission's max pods and the executor pool's slots.</param>
/// <param name="Stages">Stage parallelism and capacity (null: the agent's defaults, <see cref="StageNames.Defaults"/>).</param>
/// <param name="Wasm">Engine settings (null: the defaults).</param>
internal sealed record AgentSettings(string DataDirectory, int MaxPods, IReadOnlyDictionary<string, StageOptions>? Stages = null, WasmEngineOptions? Wasm = null);

/// <summary>
/// The real agent as <c>krustlet node</c> composes it (src/Host/NodeCommand.cs): every stage, the shared
/// Wasmtime engine, the OCI registry client and content store, the compile cache, the executor pool,
/// with a channel-backed event source in place of the Kubernetes watch and a timing writer in place of
/// the PodStatus writer.
/// </summary>
internal sealed class Agent : IAsyncDisposable
{
    private readonly OciRegistryClient _registry;
    private readonly ExecutorPool _pool;
    private readonly PodPipeline _pipeline;
    private readonly Task _running;

    private Agent(AgentSettings settings, string registryHost, TimingWriter writer, IEventSource<V1Pod>? source)
    {
        Settings = settings;
        Writer = writer;
        Directory.CreateDirectory(settings.DataDirectory);
        // The executor's pool is sized from Node:MaxPods, as the agent's settings reader does.
        var wasm = settings.Wasm ?? new WasmEngineOptions();
        Engine = new WasmEngineHost(wasm.PoolSlots > 0 ? wasm : wasm with { PoolSlots = settings.MaxPods });
        var registryOptions = new RegistryOptions { InsecureRegistries = new HashSet<string>([registryHost], StringComparer.OrdinalIgnoreCase) };
        Requests = new CountingHandler();
        _registry = new OciRegistryClient(registryOptions, Requests);
        _pool = new ExecutorPool(Engine, settings.MaxPods);
        var node = new NodeAllocatable(Pods.NodeName, settings.MaxPods, new ResourceQuantity("100000"), new ResourceQuantity("100000Gi"));
        var resources = new NoResources();
        Cache = new CompileCache(Engine, Path.Combine(settings.DataDirectory, "compile-cache"));
        _pipeline = PodPipeline.Start(
            context => new PodStages(
                new AdmissionStage(node),
                new ImagePullStage(new ImagePuller(_registry, new ContentStore(Path.Combine(settings.DataDirectory, "images")), registryOptions), context, resources),
                new CompileStage(Cache),
                new VolumeSetupStage(resources, new VolumeOptions(Path.Combine(settings.DataDirectory, "pods")), node, context),
                new RunStage(_pool, new RunOptions(Path.Combine(settings.DataDirectory, "logs")), context)),
            writer,
            new PipelineOptions(settings.Stages ?? StageNames.Defaults) { ShutdownTimeout = TimeSpan.FromSeconds(60) });
        _running = _pipeline.RunAsync(source ?? Source);
    }

    public AgentSettings Settings { get; }

    public WasmEngineHost Engine { get; }

    public CompileCache Cache { get; }

    public IPodRuntime Run => _pipeline.Stages.Run;

    public CountingHandler Requests { get; }

    public ExecutorPool Pool => _pool;

    public TimingWriter Writer { get; }

    public ChannelSource Source { get; } = new();

    public PodPipeline Pipeline => _pipeline;

    /// <summary>Starts the agent reading <paramref name="source"/>, or its own channel source when null.</summary>
    public static Agent Start(AgentSettings settings, string registryHost, TimingWriter? writer = null, IEventSource<V1Pod>? source = null) =>
        new(settings, registryHost, writer ?? new TimingWriter(), source);

    /// <summary>Completes when the source has ended and the pipeline read all of it.</summary>
    public Task SourceDone => _running;

    /// <summary>Submits pods now and returns their tracks (stamped at submission).</summary>
    public IReadOnlyList<PodTrack> Add(IEnumerable<V1Pod> pods)
    {
        var tracks = new List<PodTrack>();
        foreach (var pod in pods)
        {
            var track = Writer.Track(pod.Metadata.Uid);
            track.Submitted = System.Diagnostics.Stopwatch.GetTimestamp();
            Source.Add(pod);
            tracks.Add(track);
        }

        return tracks;
    }

    /// <summary>Deletes pods and waits for their final reports.</summary>
    public async Task DeleteAsync(IEnumerable<V1Pod> pods, TimeSpan timeout)
    {
        var waits = new List<Task>();
        foreach (var pod in pods)
        {
            waits.Add(Writer.Track(pod.Metadata.Uid).Deleted.Task);
            Source.Delete(pod);
        }

        await Task.WhenAll(waits).WaitAsync(timeout);
    }

    /// <summary>Waits until every track is Running; throws with the first failure.</summary>
    public static async Task WaitRunningAsync(IReadOnlyList<PodTrack> tracks, TimeSpan timeout)
    {
        var running = Task.WhenAll(tracks.Select(t => t.Running.Task));
        var failed = Task.WhenAny(tracks.Select(t => t.Failed.Task));
        var finished = await Task.WhenAny(running, failed).WaitAsync(timeout);
        if (finished != running)
        {
            throw new InvalidOperationException($"a pod failed: {await await failed}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        Source.Complete();
        await _running;
        await _pipeline.DisposeAsync();
        _pool.Dispose();
        _registry.Dispose();
        Engine.Dispose();
    }
}
