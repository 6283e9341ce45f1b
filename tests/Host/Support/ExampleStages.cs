using k8s.Models;
using Krustlet.Host.Standalone;
using Krustlet.Pipeline.Configuration;
using Krustlet.Stages;
using Krustlet.Stages.Admission;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;
using Krustlet.Stages.Run;
using Krustlet.Stages.VolumeSetup;

namespace Krustlet.Host.Tests.Support;

/// <summary>
/// The real stages, admission to run, over a test's directory with the example images imported, as
/// standalone composes them for a <see cref="StaticPodSource"/>: what the examples and the manifest
/// corpus run their pods through.
/// </summary>
internal sealed class ExampleStages : IAsyncDisposable
{
    private readonly WasmEngineHost _engine;
    private readonly OciRegistryClient _client;
    private readonly ExecutorPool _pool;

    private ExampleStages(string root, string node, StaticPodResources resources, int slots, ContentStore store)
    {
        _engine = new WasmEngineHost(new WasmEngineOptions());
        _client = new OciRegistryClient(new RegistryOptions());
        _pool = new ExecutorPool(_engine, slots);
        Logs = Path.Combine(root, "logs");
        var allocatable = new NodeAllocatable(node, 110, new ResourceQuantity("4"), new ResourceQuantity("4Gi"));
        VolumeSetupStage? volumes = null;
        Pipeline = PodPipeline.Start(
            context => new PodStages(
                new AdmissionStage(allocatable),
                new ImagePullStage(new ImagePuller(_client, store, new RegistryOptions()), context),
                new CompileStage(new CompileCache(_engine, Path.Combine(root, "cache"))),
                volumes = new VolumeSetupStage(resources, new VolumeOptions(Path.Combine(root, "pods")), allocatable, context),
                new RunStage(_pool, new RunOptions(Logs), context)),
            Writer,
            new PipelineOptions(StageNames.Defaults));
        Volumes = volumes!;
    }

    public WaitingWriter Writer { get; } = new();

    public PodPipeline Pipeline { get; }

    public VolumeSetupStage Volumes { get; }

    /// <summary>The container log root.</summary>
    public string Logs { get; }

    public static async Task<ExampleStages> StartAsync(string root, string node, StaticPodResources resources, int slots, CancellationToken cancellationToken)
    {
        var store = new ContentStore(Path.Combine(root, "images"));
        await new OciLayoutImporter(store).ImportAsync(ExampleFiles.Layout, cancellationToken);
        return new ExampleStages(root, node, resources, slots, store);
    }

    public async ValueTask DisposeAsync()
    {
        await Pipeline.DisposeAsync();
        _pool.Dispose();
        _client.Dispose();
        _engine.Dispose();
    }
}
