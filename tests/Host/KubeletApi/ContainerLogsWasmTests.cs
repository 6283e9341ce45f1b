using k8s.Models;
using Krustlet.Host.KubeletApi;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Events;
using Krustlet.Stages;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Host.Tests.KubeletApi;

/// <summary><c>kubectl logs -f</c> on a real module run by the real stages, while it writes.</summary>
[TestClass]
public sealed class ContainerLogsWasmTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task Following_a_running_module_shows_every_line_it_writes_and_ends_when_it_exits()
    {
        await using var registry = await LocalRegistry.StartAsync(basicAuth: false, TestContext.CancellationToken);
        var image = $"{registry.Host}/kubelet-api/ticker:v1";
        using (var pushOutput = new StringWriter())
        {
            Assert.AreEqual(0, await Program.BuildCommand(pushOutput).Parse(["image", "push", WasmFixtures.C("ticker"), image]).InvokeAsync(cancellationToken: TestContext.CancellationToken), pushOutput.ToString());
        }

        var dataDir = Directory.CreateTempSubdirectory("krustlet-logs-wasm-").FullName;
        using var engine = new WasmEngineHost(new WasmEngineOptions());
        using var client = new OciRegistryClient(new RegistryOptions());
        using var pool = new ExecutorPool(engine, 2);
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "ticker", NamespaceProperty = "default", Uid = "uid-ticker" },
            Spec = new V1PodSpec { RestartPolicy = "Never", Containers = [new V1Container { Name = "main", Image = image, Args = ["20"] }] },
        };
        await using var pipeline = PodPipeline.Start(
            context => new PodStages(
                new PassStage(StageNames.Admission),
                new ImagePullStage(new ImagePuller(client, new ContentStore(Path.Combine(dataDir, "images")), new RegistryOptions()), context),
                new CompileStage(new CompileCache(engine, Path.Combine(dataDir, "cache"))),
                new PassStage(StageNames.VolumeSetup),
                new RunStage(pool, new RunOptions(Path.Combine(dataDir, "logs")), context)),
            new RunningGate(running),
            new PipelineOptions(StageNames.Defaults));
        await using var server = new KubeletServer(
            new KubeletServerOptions { Address = "127.0.0.1", Port = 0, DataDirectory = dataDir, BearerTokens = new HashSet<string> { "t" }, LogFollowPollInterval = TimeSpan.FromMilliseconds(20) },
            new RunStagePods(pipeline.Stages.Run, pod),
            Path.Combine(dataDir, "logs"));
        await server.StartAsync(TestContext.CancellationToken);

        await pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        await running.Task.WaitAsync(TestContext.CancellationToken);
        using var http = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, presented, _, _) => presented?.GetCertHashString() == server.Certificate.GetCertHashString() },
        })
        { BaseAddress = new Uri($"https://127.0.0.1:{server.Endpoint.Port}") };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "t");
        var followed = await http.GetStringAsync(new Uri("/containerLogs/default/ticker/main?follow=true", UriKind.Relative), TestContext.CancellationToken);

        Assert.AreEqual(string.Concat(Enumerable.Range(0, 20).Select(i => $"tick {i}\n")), followed);
        Assert.IsInstanceOfType<TerminatedState>(pipeline.Stages.Run.Current(pod.Metadata.Uid)!.Containers[0].State, "the stream ended because the run did");
        Directory.Delete(dataDir, recursive: true);
    }

    /// <summary>The pod as the live agent would show it: its spec with the run stage's status.</summary>
    private sealed class RunStagePods(IPodRuntime run, V1Pod pod) : IKubeletPods
    {
        public IReadOnlyList<V1Pod> Pods() => run.Current(pod.Metadata.Uid) is { } status
            ? [new V1Pod
            {
                Metadata = pod.Metadata,
                Spec = pod.Spec,
                Status = new V1PodStatus
                {
                    Phase = status.Phase.ToString(),
                    ContainerStatuses = [.. status.Containers.Select(c => new V1ContainerStatus
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
            }]
            : [];
    }

    private sealed class PassStage(string name) : Krustlet.Pipeline.Engine.IStage<V1Pod>
    {
        public string Name => name;

        public ValueTask<Krustlet.Pipeline.Engine.StageOutcome> ApplyAsync(Krustlet.Pipeline.Engine.WorkItem<V1Pod> item, CancellationToken cancellationToken) => ValueTask.FromResult(Krustlet.Pipeline.Engine.StageOutcome.Continue);

        public ValueTask<Krustlet.Pipeline.Engine.StageOutcome> TeardownAsync(Krustlet.Pipeline.Engine.WorkItem<V1Pod> item, CancellationToken cancellationToken) => ValueTask.FromResult(Krustlet.Pipeline.Engine.StageOutcome.Continue);
    }

    /// <summary>Opens when the run stage reports the pod running.</summary>
    private sealed class RunningGate(TaskCompletionSource running) : IPodReportWriter
    {
        public ValueTask WriteAsync(PodReport report, CancellationToken cancellationToken)
        {
            if (report.Runtime?.Phase == PodPhase.Running)
            {
                running.TrySetResult();
            }
            else if (report.Kind == PodReportKind.Failed)
            {
                running.TrySetException(new InvalidOperationException($"the pod failed: {report.Reason}: {report.Message}"));
            }

            return ValueTask.CompletedTask;
        }
    }
}
