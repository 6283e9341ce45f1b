using System.Net;
using System.Net.Sockets;
using System.Text;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Stages.Tests.ImagePull;

/// <summary>
/// A registry that accepts the connection and never answers, or stalls in the middle of a blob, fails
/// the request with a reason once the response or idle timeout passes on the injected clock.
/// </summary>
[TestClass]
public sealed class RegistryTimeoutTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>A loopback server that reads each request and then does what the test says (or nothing).</summary>
    private sealed class SilentRegistry : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly List<TcpClient> _accepted = [];
        private readonly Task _accepting;
        private readonly CancellationTokenSource _stop = new();

        public SilentRegistry(string? answer)
        {
            _listener.Start();
            _accepting = AcceptAsync(answer);
        }

        public string Host => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

        public TaskCompletionSource RequestRead { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private async Task AcceptAsync(string? answer)
        {
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    _accepted.Add(client);
                    var stream = client.GetStream();
                    var buffer = new byte[4096];
                    var read = 0;
                    while (!Encoding.ASCII.GetString(buffer, 0, read).Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        read += await stream.ReadAsync(buffer.AsMemory(read), _stop.Token);
                    }

                    if (answer is not null)
                    {
                        await stream.WriteAsync(Encoding.ASCII.GetBytes(answer), _stop.Token);
                    }

                    RequestRead.TrySetResult(); // and then: silence, the connection held open
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _accepting;
            _accepted.ForEach(c => c.Dispose());
            _stop.Dispose();
        }
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Five_pulls_hung_on_a_silent_registry_do_not_hold_the_slots_a_healthy_registrys_pull_needs()
    {
        await using var silent = new SilentRegistry(answer: null);
        await using var healthy = await LocalRegistry.StartAsync(basicAuth: false, TestContext.CancellationToken);
        var root = Directory.CreateTempSubdirectory("krustlet-hung-").FullName;
        var time = new SignallingTimeProvider(); // the registry timeouts never pass: the hung pulls stay hung
        using var client = new OciRegistryClient(new RegistryOptions(), time: time);
        var good = Krustlet.Stages.ImagePull.ImageReference.Parse($"{healthy.Host}/healthy/hello:v1");
        await Krustlet.Stages.ImagePull.WasmArtifactPusher.PushAsync(client, good, WasmFixtures.C("hello"), null, TestContext.CancellationToken);
        var writer = new ObservingWriter();
        await using var pipeline = PodPipeline.Start(
            context => TestPods.Stages() with { ImagePull = new Krustlet.Stages.ImagePull.ImagePullStage(new Krustlet.Stages.ImagePull.ImagePuller(client, new Krustlet.Stages.ImagePull.ContentStore(root), new RegistryOptions()), context, time: time) },
            writer,
            TestPods.Options(), // ImagePull: 4 slots
            time: time);
        k8s.Models.V1Pod Pod(string name, string image) => new()
        {
            Metadata = new k8s.Models.V1ObjectMeta { Name = name, NamespaceProperty = "default", Uid = $"uid-{name}", ResourceVersion = "1" },
            Spec = new k8s.Models.V1PodSpec { Containers = [new k8s.Models.V1Container { Name = "main", Image = image }] },
        };

        var hung = Enumerable.Range(0, 5).Select(i => Pod($"hung-{i}", $"{silent.Host}/app-{i}:v1")).ToList();
        foreach (var pod in hung)
        {
            await pipeline.Graph.SubmitAsync(Krustlet.Pipeline.Events.PipelineEvent<k8s.Models.V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        }

        foreach (var pod in hung)
        {
            var waiting = await writer.WaitForAsync(pod.Metadata.Uid, r => r.Reason == KubeletReasons.ContainerCreating, TestContext.CancellationToken);
            Assert.AreEqual($"ImagePull: container main: Pulling image \"{pod.Spec.Containers[0].Image}\"", waiting.Message);
            Assert.AreEqual(Krustlet.Stages.Run.PodPhase.Pending, waiting.Runtime!.Phase, "a pod whose image is being pulled is Pending, its container ContainerCreating");
        }

        var healthyPod = Pod("healthy", good.ToString());
        await pipeline.Graph.SubmitAsync(Krustlet.Pipeline.Events.PipelineEvent<k8s.Models.V1Pod>.Upsert(healthyPod.Metadata.Uid, healthyPod), TestContext.CancellationToken);
        var pulled = await writer.WaitForAsync(healthyPod.Metadata.Uid, r => r.Kind == Krustlet.Stages.StatusReport.PodReportKind.Applied, TestContext.CancellationToken);

        Assert.IsNull(pulled.Reason, "pulled and through every stage while the five still hang");
        Assert.IsTrue(hung.All(p => writer.Reports.Timelines()[p.Metadata.Uid][^1].Reason == KubeletReasons.ContainerCreating), "the hung ones are still pulling");
        await pipeline.DisposeAsync();
        Directory.Delete(root, recursive: true);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_registry_that_never_answers_fails_the_request_after_the_response_timeout()
    {
        await using var registry = new SilentRegistry(answer: null);
        var time = new SignallingTimeProvider();
        var timer = time.NextTimer;
        using var client = new OciRegistryClient(new RegistryOptions { ResponseTimeout = TimeSpan.FromSeconds(60) }, time: time);

        var manifest = client.GetManifestAsync(registry.Host, "app", "v1", null, TestContext.CancellationToken);
        await timer.WaitAsync(TestContext.CancellationToken);
        await registry.RequestRead.Task.WaitAsync(TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(59));
        Assert.IsFalse(manifest.IsCompleted, "not before the timeout");
        time.Advance(TimeSpan.FromSeconds(1));

        var error = await Assert.ThrowsExactlyAsync<RegistryException>(() => manifest.WaitAsync(TestContext.CancellationToken));
        Assert.AreEqual($"{registry.Host} did not answer GET /v2/app/manifests/v1 within 60s (Registries:ResponseTimeout)", error.Message);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_blob_that_stalls_fails_after_the_idle_timeout()
    {
        await using var registry = new SilentRegistry("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nfirst bytes");
        var time = new SignallingTimeProvider();
        using var client = new OciRegistryClient(new RegistryOptions { IdleTimeout = TimeSpan.FromSeconds(30) }, time: time);
        await using var blob = await client.OpenBlobAsync(registry.Host, "app", "sha256:" + new string('0', 64), null, TestContext.CancellationToken);

        var buffer = new byte[1000];
        var read = await blob.ReadAsync(buffer, TestContext.CancellationToken);
        Assert.AreEqual("first bytes", Encoding.ASCII.GetString(buffer, 0, read));

        var timer = time.NextTimer;
        var next = blob.ReadAsync(buffer, TestContext.CancellationToken).AsTask();
        await timer.WaitAsync(TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(30));
        var error = await Assert.ThrowsExactlyAsync<RegistryException>(() => next.WaitAsync(TestContext.CancellationToken));
        Assert.AreEqual($"{registry.Host} sent nothing of blob app@sha256:{new string('0', 64)} for 30s (Registries:IdleTimeout)", error.Message);
    }
}
