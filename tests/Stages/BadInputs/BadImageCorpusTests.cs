using k8s.Models;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.BadInputs;

/// <summary>
/// Part of the bad-input corpus (#18 item 5): images and layers a registry can serve that hold no
/// module the node can run, pulled by the real image pull stage from a real registry (Debian's
/// docker-registry on 127.0.0.1) beside a good image. Each pod waits with ErrImagePull and the
/// registry's or the layer's exact reason; the good pod's pull goes through.
/// </summary>
[TestClass]
public sealed partial class BadImageCorpusTests
{
    public TestContext TestContext { get; set; } = null!;

    [System.Text.RegularExpressions.GeneratedRegex("sha256:[0-9a-f]{64}")]
    private static partial System.Text.RegularExpressions.Regex Digests();

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Every_bad_image_fails_its_pull_alone_with_the_reason_and_a_good_image_is_pulled()
    {
        var ct = TestContext.CancellationToken;
        await using var registry = await LocalRegistry.StartAsync(basicAuth: false, ct);
        var root = Directory.CreateTempSubdirectory("krustlet-corpus-images-").FullName;
        using var client = new OciRegistryClient(new RegistryOptions());
        var images = new TestImages(client, registry.Host);
        var wasm = await File.ReadAllBytesAsync(WasmFixtures.C("hello"), ct);
        var garbage = Enumerable.Range(0, 4096).Select(i => (byte)((i * 7) + 3)).ToArray();
        var notTar = new TestImages.Blob(MediaTypes.OciLayerTar, garbage);
        var notGzip = new TestImages.Blob(MediaTypes.OciLayerTarGzip, garbage);
        var linuxLayer = TestImages.TarLayer([("bin/sh", [0x7f, 0x45, 0x4c, 0x46], null)], gzip: true);

        var linux = await images.PushAsync("linux", "v1", TestImages.ImageConfig(entrypoint: ["/bin/sh"], os: "linux", architecture: "amd64"), [linuxLayer], cancellationToken: ct);
        await images.PushIndexAsync("linux", "index-only", [(linux, MediaTypes.OciManifest, "linux", "amd64")], cancellationToken: ct);
        await images.PushAsync("not-tar", "v1", TestImages.ImageConfig(entrypoint: ["/app.wasm"]), [notTar], cancellationToken: ct);
        await images.PushAsync("not-gzip", "v1", TestImages.ImageConfig(entrypoint: ["/app.wasm"]), [notGzip], cancellationToken: ct);
        await images.PushAsync("no-module", "v1", TestImages.ImageConfig(entrypoint: ["/app.wasm"]), [TestImages.TarLayer([("etc/motd", "hi"u8.ToArray(), null)], gzip: true)], cancellationToken: ct);
        await images.PushAsync("escape", "v1", TestImages.ImageConfig(entrypoint: ["/app.wasm"]), [TestImages.TarLayer([("../../etc/app.wasm", wasm, null)], gzip: true)], cancellationToken: ct);
        await images.PushAsync("link", "v1", TestImages.ImageConfig(entrypoint: ["/app.wasm"]), [TestImages.TarLayer([("app.wasm", null, "/etc/shadow")], gzip: false)], cancellationToken: ct);
        await images.PushAsync("config-not-json", "v1", new TestImages.Blob(MediaTypes.OciImageConfig, "not json"u8.ToArray()), [TestImages.TarLayer([("app.wasm", wasm, null)], gzip: true)], cancellationToken: ct);
        await images.PushAsync("unknown-layer", "v1", TestImages.WasmConfig(), [new TestImages.Blob("application/vnd.example.unknown", wasm)], cancellationToken: ct);
        await WasmArtifactPusher.PushAsync(client, ImageReference.Parse($"{registry.Host}/good:v1"), WasmFixtures.C("hello"), null, ct);

        (string Image, string Message)[] cases =
        [
            ($"{registry.Host}/absent:v1", "ImagePull: container main: failed to pull image \"{host}/absent:v1\": manifest {host}/absent:v1: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown"),
            ($"{registry.Host}/good:v2", "ImagePull: container main: failed to pull image \"{host}/good:v2\": manifest {host}/good:v2: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown"),
            ($"{registry.Host}/linux:v1", "ImagePull: container main: image is not a WebAssembly image: {host}/linux:v1 has no .wasm file: its config is for linux/amd64, not wasm"),
            ($"{registry.Host}/linux:index-only", "ImagePull: container main: image is not a WebAssembly image: {host}/linux:index-only is an index with no wasm platform (it has linux/amd64)"),
            ($"{registry.Host}/not-tar:v1", "ImagePull: container main: failed to pull image \"{host}/not-tar:v1\": layer sha256:… (application/vnd.oci.image.layer.v1.tar) is not a readable tar archive: its content is not in tar format"),
            ($"{registry.Host}/not-gzip:v1", "ImagePull: container main: failed to pull image \"{host}/not-gzip:v1\": layer sha256:… (application/vnd.oci.image.layer.v1.tar+gzip) is not a readable gzip-compressed tar archive: its data is not gzip-compressed"),
            ($"{registry.Host}/no-module:v1", "ImagePull: container main: image is not a WebAssembly image: {host}/no-module:v1 has no module at /app.wasm (named by its Entrypoint or Cmd)"),
            ($"{registry.Host}/escape:v1", "ImagePull: container main: failed to pull image \"{host}/escape:v1\": layer sha256:… has a path that escapes the image root: ../../etc/app.wasm"),
            ($"{registry.Host}/link:v1", "ImagePull: container main: failed to pull image \"{host}/link:v1\": the module /app.wasm is a link to /etc/shadow; a module must be a regular file"),
            ($"{registry.Host}/config-not-json:v1", "ImagePull: container main: failed to pull image \"{host}/config-not-json:v1\": its config sha256:… is not valid JSON: line 1, column 2: 'not json' is an invalid JSON literal. Expected the literal 'null'."),
            ($"{registry.Host}/unknown-layer:v1", "ImagePull: container main: image is not a WebAssembly image: {host}/unknown-layer:v1 has layers of types application/vnd.example.unknown"),
            ("127.0.0.1:1/nothing/listens:v1", "ImagePull: container main: failed to pull image \"127.0.0.1:1/nothing/listens:v1\": 127.0.0.1:1: Connection refused (127.0.0.1:1)"),
            ($"{registry.Host}/good@sha256:{new string('0', 64)}", "ImagePull: container main: failed to pull image \"{host}/good@sha256:…\": manifest {host}/good@sha256:…: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown"),
        ];

        var time = new SignallingTimeProvider();
        var writer = new ObservingWriter();
        await using var pipeline = PodPipeline.Start(
            context => TestPods.Stages() with { ImagePull = new ImagePullStage(new ImagePuller(client, new ContentStore(root), new RegistryOptions()), context, time: time) },
            writer,
            TestPods.Options(),
            time: time);
        V1Pod Pod(string name, string image) => new()
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default", Uid = $"uid-{name}", ResourceVersion = "1" },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "main", Image = image, ImagePullPolicy = "Always" }] },
        };
        var pods = cases.Select((c, i) => Pod($"bad-{i}", c.Image)).ToList();
        var good = Pod("good", $"{registry.Host}/good:v1");
        foreach (var pod in pods.Append(good))
        {
            await pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), ct);
        }

        var wrong = new List<string>();
        var messages = new List<string>();
        for (var i = 0; i < cases.Length; i++)
        {
            // Past "ContainerCreating: Pulling image", reported while the pull runs off the stage.
            var report = await writer.WaitForAsync(pods[i].Metadata.Uid, r => (r.Kind == PodReportKind.Failed && r.Reason != KubeletReasons.ContainerCreating) || r.Kind == PodReportKind.Applied, ct);
            var expected = cases[i].Message.Replace("{host}", registry.Host, StringComparison.Ordinal);
            // The status stage keeps the latest report of a pod: the ErrImagePull may already have become
            // the back-off that follows it, whose message keeps the pull's error after its own words.
            var message = report.Message ?? string.Empty;
            if (report.Reason == KubeletReasons.ImagePullBackOff)
            {
                message = message.Replace($"Back-off pulling image \"{cases[i].Image}\": ErrImagePull: ", string.Empty, StringComparison.Ordinal);
            }

            messages.Add(message);
            if (report.Kind != PodReportKind.Failed || report.Reason is not (KubeletReasons.ErrImagePull or KubeletReasons.ImagePullBackOff) || Digests().Replace(message, "sha256:…") != expected)
            {
                wrong.Add($"{cases[i].Image}: expected ErrImagePull \"{expected}\", got {report.Kind} {report.Reason} \"{report.Message}\"");
            }
        }

        var pulled = await writer.WaitForAsync(good.Metadata.Uid, r => r.Kind == PodReportKind.Applied || (r.Kind == PodReportKind.Failed && r.Reason != KubeletReasons.ContainerCreating), ct);
        Assert.AreEqual(PodReportKind.Applied, pulled.Kind, pulled.Message);
        Assert.IsEmpty(wrong, string.Join("\n", wrong));
        Assert.IsFalse(messages.Any(m => m.Contains("Exception", StringComparison.Ordinal) || m.Contains("System.", StringComparison.Ordinal) || m.Contains("LineNumber", StringComparison.Ordinal)), string.Join("\n", messages));
        Directory.Delete(root, recursive: true);
    }
}
