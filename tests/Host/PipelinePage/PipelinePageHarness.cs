using System.Runtime.CompilerServices;
using System.Threading.Channels;
using k8s.Models;
using Krustlet.Host.Agent;
using Krustlet.Host.Configuration;
using Krustlet.Host.PipelinePage;
using Krustlet.Host.Standalone;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.Admission;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.PodEvents;

namespace Krustlet.Host.Tests.PipelinePage;

/// <summary>
/// A real agent in the test's process (every stage, real Wasmtime, the example images) fed pods through
/// a channel the test writes, with its pipeline page started as <c>node</c> and <c>standalone</c> start it.
/// </summary>
internal sealed class PipelinePageHarness : IAsyncDisposable
{
    public const string NodeName = "page-node";

    private readonly string _root;
    private readonly Channel<PipelineEvent<V1Pod>> _events = Channel.CreateUnbounded<PipelineEvent<V1Pod>>();
    private readonly Task _running;

    private PipelinePageHarness(string root, AgentRuntime runtime, PipelinePageHost page, Krustlet.Host.KubeletApi.KubeletServer? api)
    {
        _root = root;
        Runtime = runtime;
        Page = page;
        Api = api;
        _running = runtime.RunAsync(new ChannelSource(_events.Reader), CancellationToken.None);
    }

    public AgentRuntime Runtime { get; }

    public PipelinePageHost Page { get; }

    public Krustlet.Host.KubeletApi.KubeletServer? Api { get; }

    /// <summary>What the page's start printed: where it is.</summary>
    public string Announcement { get; private set; } = string.Empty;

    /// <summary>The page's URL when it is on loopback.</summary>
    public Uri Url => new(Announcement["pipeline page: ".Length..].Split(' ')[0]);

    /// <param name="onKubeletPort">Serve the page on the kubelet API behind its authentication (bearer <paramref name="token"/>).</param>
    /// <param name="token">The kubelet API's bearer token.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    public static async Task<PipelinePageHarness> StartAsync(bool onKubeletPort, string token, CancellationToken cancellationToken)
    {
        var root = Directory.CreateTempSubdirectory("krustlet-page-").FullName;
        var settings = AgentSettingsReader.Read(new SettingsInput(null, new Dictionary<string, string>(), [
            .. Flag(SettingsCatalog.DataDir, root),
            .. Flag(SettingsCatalog.NodeName, NodeName),
            .. Flag(SettingsCatalog.ServerAddress, "127.0.0.1"),
            .. Flag(SettingsCatalog.ServerPort, "0"),
            .. Flag(SettingsCatalog.PagePort, "0"),
            .. Flag(SettingsCatalog.PageOnKubeletPort, onKubeletPort ? "true" : "false"),
        ]));
        await new OciLayoutImporter(new ContentStore(settings.ImagesDirectory), settings.Registries).ImportAsync(ExampleFiles.Layout, cancellationToken);
        var runtime = AgentRuntime.Start(settings, new AgentServices(new StaticPodResources(), null, NullPodEventRecorder.Instance, NodeAllocatable.OfThisMachine(NodeName, settings.MaxPods)), saveState: false);
        var page = PipelinePageHost.Create(runtime, TimeSpan.FromMilliseconds(250))!;
        var api = await runtime.StartKubeletApiAsync(null, null, cancellationToken, [token], routes: page.KubeletRoutes);
        var harness = new PipelinePageHarness(root, runtime, page, api);
        harness.Announcement = await page.StartAsync(api.Endpoint, cancellationToken);
        return harness;
    }

    /// <summary>Adds pods: <paramref name="count"/> of the example image <paramref name="image"/>, named <paramref name="prefix"/>-N.</summary>
    public async Task AddPodsAsync(string prefix, string image, int count, string restartPolicy, CancellationToken cancellationToken)
    {
        for (var i = 0; i < count; i++)
        {
            var pod = new V1Pod
            {
                ApiVersion = "v1",
                Kind = "Pod",
                Metadata = new V1ObjectMeta { Name = $"{prefix}-{i}", NamespaceProperty = "default", Uid = $"uid-{prefix}-{i}", ResourceVersion = "1" },
                Spec = new V1PodSpec
                {
                    NodeName = NodeName,
                    RestartPolicy = restartPolicy,
                    Containers = [new V1Container { Name = "main", Image = $"examples.krustlet.dev/{image}:v1", ImagePullPolicy = "IfNotPresent" }],
                },
            };
            await _events.Writer.WriteAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _events.Writer.TryComplete();
        await _running;
        if (Api is not null)
        {
            await Api.DisposeAsync();
        }

        await Page.DisposeAsync();
        await Runtime.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    private static RawSetting[] Flag(Setting setting, string value) => [SettingsSources.FromText(setting, "test", value, [])];

    private sealed class ChannelSource(ChannelReader<PipelineEvent<V1Pod>> reader) : IEventSource<V1Pod>
    {
        public string Name => "test";

        public async IAsyncEnumerable<PipelineEvent<V1Pod>> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await foreach (var evt in reader.ReadAllAsync(cancellationToken))
            {
                yield return evt;
            }
        }
    }
}
