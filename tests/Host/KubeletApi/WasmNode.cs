using System.Collections.Concurrent;
using k8s.Models;
using Krustlet.Host.KubeletApi;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;
using Krustlet.Stages;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Host.Tests.KubeletApi;

/// <summary>
/// A node of the real stages (pull from a local registry, compile, run on the executor) with the kubelet
/// API over its pods (bearer token <see cref="Token"/>), for tests that read running guests through it.
/// </summary>
internal sealed class WasmNode : IAsyncDisposable
{
    public const string Token = "t";

    private readonly ConcurrentDictionary<string, TaskCompletionSource> _running = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, V1Pod> _pods = new(StringComparer.Ordinal);
    private readonly string _dataDir = Directory.CreateTempSubdirectory("krustlet-wasm-node-").FullName;
    private LocalRegistry? _registry;
    private WasmEngineHost? _engine;
    private OciRegistryClient? _client;
    private ExecutorPool? _pool;
    private PodPipeline? _pipeline;
    private KubeletServer? _server;

    private WasmNode()
    {
    }

    public PodPipeline Pipeline => _pipeline!;

    public KubeletServer Server => _server!;

    public static async Task<WasmNode> StartAsync(CancellationToken cancellationToken, int slots = 2)
    {
        var node = new WasmNode();
        try
        {
            node._registry = await LocalRegistry.StartAsync(basicAuth: false, cancellationToken);
            node._engine = new WasmEngineHost(new WasmEngineOptions());
            node._client = new OciRegistryClient(new RegistryOptions());
            node._pool = new ExecutorPool(node._engine, slots);
            var logs = Path.Combine(node._dataDir, "logs");
            node._pipeline = PodPipeline.Start(
                context => new PodStages(
                    new PassStage(StageNames.Admission),
                    new ImagePullStage(new ImagePuller(node._client, new ContentStore(Path.Combine(node._dataDir, "images")), new RegistryOptions()), context),
                    new CompileStage(new CompileCache(node._engine, Path.Combine(node._dataDir, "cache"))),
                    new PassStage(StageNames.VolumeSetup),
                    new RunStage(node._pool, new RunOptions(logs), context)),
                new RunningGate(node._running),
                new PipelineOptions(StageNames.Defaults));
            node._server = new KubeletServer(
                new KubeletServerOptions { Address = "127.0.0.1", Port = 0, DataDirectory = node._dataDir, NodeName = "wasm-node", BearerTokens = new HashSet<string> { Token }, LogFollowPollInterval = TimeSpan.FromMilliseconds(20) },
                new RunStagePods(node._pipeline.Stages.Run, node._pods),
                logs,
                usage: node._pipeline.Stages.Run as IPodUsageSource);
            await node._server.StartAsync(cancellationToken);
            return node;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    /// <summary>Pushes a module to the node's registry as <c>kubelet-api/&lt;repository&gt;:v1</c>; returns the image reference.</summary>
    public async Task<string> PushAsync(string modulePath, string repository, CancellationToken cancellationToken)
    {
        var image = $"{_registry!.Host}/kubelet-api/{repository}:v1";
        using var output = new StringWriter();
        Assert.AreEqual(0, await Program.BuildCommand(output).Parse(["image", "push", modulePath, image]).InvokeAsync(cancellationToken: cancellationToken), output.ToString());
        return image;
    }

    /// <summary>A one-container pod in namespace default, uid <c>uid-&lt;name&gt;</c>, restartPolicy Never.</summary>
    public static V1Pod Pod(string name, string image, params string[] args) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default", Uid = $"uid-{name}" },
        Spec = new V1PodSpec { RestartPolicy = "Never", Containers = [new V1Container { Name = "main", Image = image, Args = args }] },
    };

    /// <summary>Submits the pod and waits until the run stage reports it Running.</summary>
    public async Task RunAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        var running = _running.GetOrAdd(pod.Metadata.Uid, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        _pods[pod.Metadata.Uid] = pod;
        await Pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), cancellationToken);
        await running.Task.WaitAsync(cancellationToken);
    }

    /// <summary>A client that trusts exactly the server's certificate, with the bearer token unless <paramref name="token"/> is null.</summary>
    public HttpClient Client(string? token = Token)
    {
        var certificate = Server.Certificate.GetCertHashString();
        var http = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, presented, _, _) => presented?.GetCertHashString() == certificate },
        })
        { BaseAddress = new Uri($"https://127.0.0.1:{Server.Endpoint.Port}") };
        if (token is not null)
        {
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        return http;
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        if (_pipeline is not null)
        {
            await _pipeline.Stages.Run.StopAllAsync("the test is over", TimeSpan.FromSeconds(10));
            await _pipeline.DisposeAsync();
        }

        _pool?.Dispose();
        _client?.Dispose();
        _engine?.Dispose();
        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }

        Directory.Delete(_dataDir, recursive: true);
    }

    /// <summary>The pods as the live agent would show them: their spec with the run stage's status.</summary>
    private sealed class RunStagePods(IPodRuntime run, ConcurrentDictionary<string, V1Pod> pods) : IKubeletPods
    {
        public IReadOnlyList<V1Pod> Pods() => [.. pods.Values.Select(pod => (Pod: pod, Status: run.Current(pod.Metadata.Uid))).Where(p => p.Status is not null).Select(p => new V1Pod
        {
            Metadata = p.Pod.Metadata,
            Spec = p.Pod.Spec,
            Status = new V1PodStatus
            {
                Phase = p.Status!.Phase.ToString(),
                ContainerStatuses = [.. p.Status.Containers.Select(c => new V1ContainerStatus
                {
                    Name = c.Name,
                    Image = c.Image,
                    ImageID = c.ImageId,
                    RestartCount = c.RestartCount,
                    Ready = c.Ready,
                    State = c.State switch
                    {
                        RunningState r => new V1ContainerState { Running = new V1ContainerStateRunning { StartedAt = r.StartedAt.UtcDateTime } },
                        TerminatedState t => new V1ContainerState { Terminated = new V1ContainerStateTerminated { ExitCode = t.ExitCode, Reason = t.Reason } },
                        WaitingState w => new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = w.Reason } },
                        _ => new V1ContainerState(),
                    },
                })],
            },
        })];
    }

    private sealed class PassStage(string name) : IStage<V1Pod>
    {
        public string Name => name;

        public ValueTask<StageOutcome> ApplyAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken) => ValueTask.FromResult(StageOutcome.Continue);

        public ValueTask<StageOutcome> TeardownAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken) => ValueTask.FromResult(StageOutcome.Continue);
    }

    /// <summary>Opens a pod's gate when the run stage reports it running; fails it when the pod fails.</summary>
    private sealed class RunningGate(ConcurrentDictionary<string, TaskCompletionSource> running) : IPodReportWriter
    {
        public ValueTask WriteAsync(PodReport report, CancellationToken cancellationToken)
        {
            var gate = running.GetOrAdd(report.Uid, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            if (report.Runtime?.Phase == PodPhase.Running)
            {
                gate.TrySetResult();
            }
            else if (report.Kind == PodReportKind.Failed && report.Reason != KubeletReasons.ContainerCreating) // not "Pulling image": it goes on
            {
                gate.TrySetException(new InvalidOperationException($"the pod failed: {report.Reason}: {report.Message}"));
            }

            return ValueTask.CompletedTask;
        }
    }
}
