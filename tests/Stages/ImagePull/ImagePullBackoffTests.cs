using k8s.Models;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.ImagePull;

[TestClass]
public sealed class ImagePullBackoffTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_failed_pull_reports_ErrImagePull_then_ImagePullBackOff_and_retries_with_doubling_delays()
    {
        await using var registry = await LocalRegistry.StartAsync(basicAuth: false, TestContext.CancellationToken);
        var root = Directory.CreateTempSubdirectory("krustlet-backoff-").FullName;
        var time = new SignallingTimeProvider();
        var handler = new InspectingHandler();
        using var client = new OciRegistryClient(new RegistryOptions(), handler);
        var recorded = new RecordedEvents();
        var writer = new ObservingWriter();
        await using var pipeline = PodPipeline.Start(
            context => TestPods.Stages() with { ImagePull = new ImagePullStage(new ImagePuller(client, new ContentStore(root), new RegistryOptions()), context, time: time, events: recorded) },
            writer,
            TestPods.Options(),
            time: time);
        var image = ImageReference.Parse($"{registry.Host}/later/app:v1");
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "waiting", NamespaceProperty = "default", Uid = "uid-waiting", ResourceVersion = "1" },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "main", Image = image.ToString() }] },
        };

        var firstTimer = time.NextTimer;
        await pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        var backOff = await writer.WaitForAsync(pod.Metadata.Uid, r => r.Reason == KubeletReasons.ImagePullBackOff, TestContext.CancellationToken);
        StringAssert.StartsWith(backOff.Message, $"ImagePull: container main: Back-off pulling image \"{image}\": ErrImagePull: failed to pull image \"{image}\": ", "the back-off keeps the registry's reason");
        StringAssert.Contains(backOff.Message, "MANIFEST_UNKNOWN");
        Assert.AreEqual("ImagePullBackOff", ((Krustlet.Stages.Run.WaitingState)backOff.Runtime!.Containers[0].State).Reason);
        Assert.AreEqual(1, handler.ManifestGets, "no pull while backing off");

        await firstTimer.WaitAsync(TestContext.CancellationToken);
        var secondTimer = time.NextTimer;
        time.Advance(TimeSpan.FromSeconds(10));
        await secondTimer.WaitAsync(TestContext.CancellationToken);
        Assert.AreEqual(2, handler.ManifestGets, "retried after 10 s");

        // The image appears; the next retry, 20 s later, pulls it.
        await WasmArtifactPusher.PushAsync(client, image, WasmFixtures.C("hello"), null, TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(19));
        Assert.AreEqual(2, handler.ManifestGets, "the second delay is 20 s");
        time.Advance(TimeSpan.FromSeconds(1));
        await writer.WaitForAsync(pod.Metadata.Uid, r => r.Kind == PodReportKind.Applied, TestContext.CancellationToken);
        Assert.IsTrue(writer.Reports.Timelines()[pod.Metadata.Uid].Any(r => r.Reason == "ErrImagePull"));
        CollectionAssert.IsSubsetOf(new[] { "Pulling", "Failed", "Pulled" }, recorded.All.Select(e => e.Reason).ToArray());
        Assert.IsTrue(recorded.All.Where(e => e.Reason == "Failed").All(e => e.Warning && e.Message.StartsWith($"Failed to pull image \"{image}\": ", StringComparison.Ordinal)));
        Directory.Delete(root, recursive: true);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task An_update_of_a_pod_whose_image_was_pulled_pulls_nothing_again_and_never_shows_it_pulling()
    {
        await using var registry = await LocalRegistry.StartAsync(basicAuth: false, TestContext.CancellationToken);
        var root = Directory.CreateTempSubdirectory("krustlet-repull-").FullName;
        var handler = new InspectingHandler();
        using var client = new OciRegistryClient(new RegistryOptions(), handler);
        var writer = new ObservingWriter();
        await using var pipeline = PodPipeline.Start(
            context => TestPods.Stages() with { ImagePull = new ImagePullStage(new ImagePuller(client, new ContentStore(root), new RegistryOptions()), context) },
            writer,
            TestPods.Options());
        var image = ImageReference.Parse($"{registry.Host}/always/app:latest"); // :latest: pull policy Always
        await WasmArtifactPusher.PushAsync(client, image, WasmFixtures.C("hello"), null, TestContext.CancellationToken);
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "always", NamespaceProperty = "default", Uid = "uid-always", ResourceVersion = "1" },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "main", Image = image.ToString() }] },
        };

        await pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        await writer.WaitForAsync(pod.Metadata.Uid, r => r.Kind == PodReportKind.Applied, TestContext.CancellationToken);
        var manifests = handler.ManifestGets;
        var reports = writer.Reports.Timelines()[pod.Metadata.Uid].Count;

        // Its labels change (resourceVersion 2): the pipeline runs it again.
        pod.Metadata.Labels = new Dictionary<string, string> { ["tier"] = "web" };
        pod.Metadata.ResourceVersion = "2";
        await pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        await writer.WaitForAsync(pod.Metadata.Uid, r => r.Kind == PodReportKind.Applied && r.ResourceVersion == "2", TestContext.CancellationToken);

        Assert.AreEqual(manifests, handler.ManifestGets, "no second pull");
        Assert.IsFalse(writer.Reports.Timelines()[pod.Metadata.Uid].Skip(reports).Any(r => r.Reason == KubeletReasons.ContainerCreating), "never shown pulling again");
        Directory.Delete(root, recursive: true);
    }
}
