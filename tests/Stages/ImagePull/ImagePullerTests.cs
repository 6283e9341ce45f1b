using System.Text;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Stages.Tests.ImagePull;

/// <summary>The image puller against a real registry (Debian's docker-registry on 127.0.0.1).</summary>
[TestClass]
public sealed class ImagePullerTests
{
    private static LocalRegistry _registry = null!;

    private string _store = null!;
    private InspectingHandler _handler = null!;
    private OciRegistryClient _client = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartRegistry(TestContext context) => _registry = await LocalRegistry.StartAsync(basicAuth: false, context.CancellationToken);

    [ClassCleanup]
    public static async Task StopRegistry() => await _registry.DisposeAsync();

    [TestInitialize]
    public void Setup()
    {
        _store = Directory.CreateTempSubdirectory("krustlet-store-").FullName;
        _handler = new InspectingHandler();
        _client = new OciRegistryClient(new RegistryOptions(), _handler);
    }

    [TestCleanup]
    public void Cleanup()
    {
        _client.Dispose();
        Directory.Delete(_store, recursive: true);
    }

    private ImagePuller Puller() => new(_client, new ContentStore(_store), new RegistryOptions());

    private TestImages Images => new(_client, _registry.Host);

    private static ImageReference Ref(string repositoryAndTag) => ImageReference.Parse($"{_registry.Host}/{repositoryAndTag}");

    private static string Unique(string name) => $"{name}-{Guid.NewGuid():N}"[..20];

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_pushed_module_is_pulled_back_byte_for_byte()
    {
        var module = WasmFixtures.C("hello");
        var image = Ref($"{Unique("hello")}:v1");
        await WasmArtifactPusher.PushAsync(_client, image, module, null, TestContext.CancellationToken);

        var pulled = await Puller().PullAsync(image, PullPolicy.Always, null, TestContext.CancellationToken);

        CollectionAssert.AreEqual(File.ReadAllBytes(module), File.ReadAllBytes(pulled.ModulePath));
        Assert.AreEqual(WasmFixtures.Digest(module), pulled.Digest);
        Assert.AreEqual("hello.wasm", pulled.ModuleName);
        Assert.AreEqual(ImageDefaults.None, pulled.Defaults);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow(MediaTypes.WasmLayer)]
    [DataRow(MediaTypes.Wasm)]
    [DataRow(MediaTypes.WasmComponentLayer)]
    public async Task Each_wasm_layer_type_is_accepted(string layerType)
    {
        var bytes = File.ReadAllBytes(WasmFixtures.Wat(Wat.Returns));
        var repository = Unique("format");
        await Images.PushAsync(repository, "v1", TestImages.WasmConfig(), [new TestImages.Blob(layerType, bytes, "app.wasm")], cancellationToken: TestContext.CancellationToken);

        var pulled = await Puller().PullAsync(Ref($"{repository}:v1"), PullPolicy.Always, null, TestContext.CancellationToken);

        CollectionAssert.AreEqual(bytes, File.ReadAllBytes(pulled.ModulePath));
        Assert.AreEqual("app.wasm", pulled.ModuleName);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_wasm_config_naming_its_layer_picks_that_layer()
    {
        var other = File.ReadAllBytes(WasmFixtures.Wat(Wat.Exit(9)));
        var module = File.ReadAllBytes(WasmFixtures.Wat(Wat.Returns));
        var moduleLayer = new TestImages.Blob(MediaTypes.WasmLayer, module, "main.wasm");
        var config = new TestImages.Blob(MediaTypes.WasmConfig, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new { os = "wasip1", architecture = "wasm", layerDigests = new[] { moduleLayer.Digest } }));
        var repository = Unique("named");
        await Images.PushAsync(repository, "v1", config, [new TestImages.Blob(MediaTypes.WasmLayer, other, "helper.wasm"), moduleLayer], cancellationToken: TestContext.CancellationToken);

        var pulled = await Puller().PullAsync(Ref($"{repository}:v1"), PullPolicy.Always, null, TestContext.CancellationToken);

        Assert.AreEqual(moduleLayer.Digest, pulled.Digest);
        Assert.AreEqual("main.wasm", pulled.ModuleName);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow(true, MediaTypes.OciManifest, MediaTypes.OciLayerTarGzip, MediaTypes.OciImageConfig)]
    [DataRow(false, MediaTypes.OciManifest, MediaTypes.OciLayerTar, MediaTypes.OciImageConfig)]
    [DataRow(true, MediaTypes.DockerManifest, MediaTypes.DockerLayerTarGzip, MediaTypes.DockerImageConfig)]
    public async Task An_ordinary_scratch_image_gives_its_module_and_config_defaults(bool gzip, string manifestType, string layerType, string configType)
    {
        var bytes = File.ReadAllBytes(WasmFixtures.C("hello"));
        var repository = Unique("scratch");
        var layers = new[]
        {
            TestImages.TarLayer([("etc/motd", Encoding.UTF8.GetBytes("hi"), null), ("app/hello.wasm", Encoding.UTF8.GetBytes("old build"), null)], gzip, layerType),
            TestImages.TarLayer([("./app/hello.wasm", bytes, null)], gzip, layerType),
        };
        var config = TestImages.ImageConfig(cmd: ["/app/hello.wasm", "--flag"], env: ["GREETING=from the image", "PATH=/"], workingDir: "/app", mediaType: configType);
        await Images.PushAsync(repository, "v1", config, layers, manifestType, TestContext.CancellationToken);

        var pulled = await Puller().PullAsync(Ref($"{repository}:v1"), PullPolicy.Always, null, TestContext.CancellationToken);

        CollectionAssert.AreEqual(bytes, File.ReadAllBytes(pulled.ModulePath), "the later layer's file wins");
        Assert.AreEqual("hello.wasm", pulled.ModuleName);
        CollectionAssert.AreEqual(new[] { "/app/hello.wasm" }, pulled.Defaults.Entrypoint.ToArray(), "the module named by Cmd becomes the entrypoint");
        CollectionAssert.AreEqual(new[] { "--flag" }, pulled.Defaults.Cmd.ToArray());
        CollectionAssert.AreEqual(new[] { "GREETING=from the image", "PATH=/" }, pulled.Defaults.Env.ToArray());
        Assert.AreEqual("/app", pulled.Defaults.WorkingDir);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow(MediaTypes.OciIndex, MediaTypes.OciManifest)]
    [DataRow(MediaTypes.DockerManifestList, MediaTypes.DockerManifest)]
    public async Task An_index_with_several_platforms_selects_the_wasm_one(string indexType, string manifestType)
    {
        var wasm = File.ReadAllBytes(WasmFixtures.Wat(Wat.Returns));
        var repository = Unique("multi");
        var linux = await Images.PushAsync(repository, "linux", TestImages.ImageConfig(os: "linux", architecture: "amd64"), [TestImages.TarLayer([("bin/sh", [0x7f, 0x45, 0x4c, 0x46], null)], gzip: true)], manifestType, TestContext.CancellationToken);
        var wasmManifest = await Images.PushAsync(repository, "wasm", TestImages.WasmConfig(), [new TestImages.Blob(MediaTypes.WasmLayer, wasm)], manifestType, TestContext.CancellationToken);
        await Images.PushIndexAsync(repository, "v1", [(linux, manifestType, "linux", "amd64"), (wasmManifest, manifestType, "wasip1", "wasm")], indexType, TestContext.CancellationToken);

        var pulled = await Puller().PullAsync(Ref($"{repository}:v1"), PullPolicy.Always, null, TestContext.CancellationToken);

        CollectionAssert.AreEqual(wasm, File.ReadAllBytes(pulled.ModulePath));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_linux_image_is_refused_as_not_webassembly()
    {
        var repository = Unique("linux");
        var linux = await Images.PushAsync(repository, "v1", TestImages.ImageConfig(entrypoint: ["/bin/sh"], os: "linux", architecture: "amd64"), [TestImages.TarLayer([("bin/sh", [0x7f, 0x45, 0x4c, 0x46], null)], gzip: true)], cancellationToken: TestContext.CancellationToken);
        await Images.PushIndexAsync(repository, "multi", [(linux, MediaTypes.OciManifest, "linux", "amd64"), (linux, MediaTypes.OciManifest, "linux", "arm64")], cancellationToken: TestContext.CancellationToken);

        var single = await Assert.ThrowsExactlyAsync<ImagePullException>(() => Puller().PullAsync(Ref($"{repository}:v1"), PullPolicy.Always, null, TestContext.CancellationToken));
        var index = await Assert.ThrowsExactlyAsync<ImagePullException>(() => Puller().PullAsync(Ref($"{repository}:multi"), PullPolicy.Always, null, TestContext.CancellationToken));

        Assert.AreEqual(KubeletReasons.ErrImagePull, single.Reason);
        StringAssert.StartsWith(single.Message, "image is not a WebAssembly image: ");
        StringAssert.StartsWith(index.Message, "image is not a WebAssembly image: ");
        StringAssert.Contains(index.Message, "linux/amd64, linux/arm64");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_tampered_blob_is_refused_and_nothing_is_stored()
    {
        var module = WasmFixtures.Wat(Wat.Exit(3));
        var image = Ref($"{Unique("tamper")}:v1");
        await WasmArtifactPusher.PushAsync(_client, image, module, null, TestContext.CancellationToken);
        _handler.TamperBlobs = body => [.. body.Reverse()];

        var ex = await Assert.ThrowsExactlyAsync<ImagePullException>(() => Puller().PullAsync(image, PullPolicy.Always, null, TestContext.CancellationToken));

        StringAssert.Contains(ex.Message, "the content was altered or corrupted");
        var store = new ContentStore(_store);
        Assert.IsFalse(store.Has(WasmFixtures.Digest(module)));
        Assert.IsEmpty(Directory.GetFiles(Path.Combine(_store, "tmp")), "no partial file is left");
        Assert.IsNull(store.Find(image.ToString()));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_missing_image_is_a_precise_pull_error()
    {
        var ex = await Assert.ThrowsExactlyAsync<ImagePullException>(() => Puller().PullAsync(Ref($"{Unique("absent")}:v1"), PullPolicy.Always, null, TestContext.CancellationToken));

        Assert.AreEqual(KubeletReasons.ErrImagePull, ex.Reason);
        StringAssert.Contains(ex.Message, "404");
        StringAssert.Contains(ex.Message, "MANIFEST_UNKNOWN: manifest unknown");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_tar_layer_climbing_out_of_the_root_is_refused()
    {
        var repository = Unique("escape");
        await Images.PushAsync(repository, "v1", TestImages.ImageConfig(entrypoint: ["/app.wasm"]), [TestImages.TarLayer([("../../etc/app.wasm", [0, 0x61, 0x73, 0x6d], null)], gzip: true)], cancellationToken: TestContext.CancellationToken);

        var ex = await Assert.ThrowsExactlyAsync<ImagePullException>(() => Puller().PullAsync(Ref($"{repository}:v1"), PullPolicy.Always, null, TestContext.CancellationToken));

        StringAssert.Contains(ex.Message, "has a path that escapes the image root: ../../etc/app.wasm");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow(MediaTypes.OciLayerTarGzip, "gzip-compressed tar archive")]
    [DataRow(MediaTypes.OciLayerTar, "tar archive")]
    public async Task A_layer_that_is_not_a_readable_archive_is_named_with_its_digest(string mediaType, string archive)
    {
        var repository = Unique("broken");
        var garbage = new TestImages.Blob(mediaType, [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 7 + 3))]);
        await Images.PushAsync(repository, "v1", TestImages.ImageConfig(entrypoint: ["/app.wasm"]), [garbage], cancellationToken: TestContext.CancellationToken);

        var ex = await Assert.ThrowsExactlyAsync<ImagePullException>(() => Puller().PullAsync(Ref($"{repository}:v1"), PullPolicy.Always, null, TestContext.CancellationToken));

        Assert.AreEqual(KubeletReasons.ErrImagePull, ex.Reason);
        StringAssert.StartsWith(ex.Message, $"failed to pull image \"{Ref($"{repository}:v1")}\": layer {garbage.Digest} ({mediaType}) is not a readable {archive}: ");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_module_that_is_a_link_is_refused()
    {
        var repository = Unique("link");
        await Images.PushAsync(repository, "v1", TestImages.ImageConfig(entrypoint: ["/app.wasm"]), [TestImages.TarLayer([("app.wasm", null, "/etc/shadow")], gzip: false)], cancellationToken: TestContext.CancellationToken);

        var ex = await Assert.ThrowsExactlyAsync<ImagePullException>(() => Puller().PullAsync(Ref($"{repository}:v1"), PullPolicy.Always, null, TestContext.CancellationToken));

        StringAssert.Contains(ex.Message, "the module /app.wasm is a link to /etc/shadow");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Concurrent_pulls_of_one_reference_share_one_download()
    {
        var image = Ref($"{Unique("dedupe")}:v1");
        await WasmArtifactPusher.PushAsync(_client, image, WasmFixtures.C("hello"), null, TestContext.CancellationToken);
        var puller = Puller();
        using var start = new Barrier(10);

        var pulls = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => Task.Run(
            () =>
            {
                start.SignalAndWait(TestContext.CancellationToken);
                return puller.PullAsync(image, PullPolicy.Always, null, TestContext.CancellationToken);
            },
            TestContext.CancellationToken)));

        Assert.AreEqual(1, _handler.ManifestGets);
        Assert.AreEqual(2, _handler.BlobGets, "one config and one layer");
        Assert.IsTrue(pulls.All(p => p.Digest == pulls[0].Digest));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Blobs_are_fetched_once_by_content_digest_across_tags_digests_and_repositories()
    {
        var module = WasmFixtures.C("hello");
        var first = Ref($"{Unique("shared-a")}:v1");
        var second = Ref($"{Unique("shared-b")}:v2");
        var manifestDigest = await WasmArtifactPusher.PushAsync(_client, first, module, null, TestContext.CancellationToken);
        await WasmArtifactPusher.PushAsync(_client, second, module, null, TestContext.CancellationToken);
        var byDigest = ImageReference.Parse($"{_registry.Host}/{first.Repository}@{manifestDigest}");
        var puller = Puller();
        using var start = new Barrier(6);

        var pulls = await Task.WhenAll(new[] { first, second, byDigest, first, second, byDigest }.Select(image => Task.Run(
            () =>
            {
                start.SignalAndWait(TestContext.CancellationToken);
                return puller.PullAsync(image, PullPolicy.Always, null, TestContext.CancellationToken);
            },
            TestContext.CancellationToken)));

        Assert.AreEqual(2, _handler.BlobGets, "one config and one layer, whichever reference asked first");
        Assert.IsTrue(_handler.ManifestGets is >= 3 and <= 6, $"each reference's manifest is its own ({_handler.ManifestGets})");
        Assert.IsTrue(pulls.All(p => p.Digest == WasmFixtures.Digest(module)));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Pull_policies_decide_when_the_registry_is_asked()
    {
        var image = Ref($"{Unique("policy")}:v1");
        await WasmArtifactPusher.PushAsync(_client, image, WasmFixtures.C("hello"), null, TestContext.CancellationToken);
        var puller = Puller();

        var never = await Assert.ThrowsExactlyAsync<ImagePullException>(() => puller.PullAsync(image, PullPolicy.Never, null, TestContext.CancellationToken));
        Assert.AreEqual(KubeletReasons.ErrImageNeverPull, never.Reason);
        Assert.AreEqual($"Container image \"{image}\" is not present with pull policy of Never", never.Message);
        Assert.AreEqual(0, _handler.ManifestGets);

        await puller.PullAsync(image, PullPolicy.IfNotPresent, null, TestContext.CancellationToken);
        Assert.AreEqual(1, _handler.ManifestGets);
        var present = await puller.PullAsync(image, PullPolicy.IfNotPresent, null, TestContext.CancellationToken);
        await puller.PullAsync(image, PullPolicy.Never, null, TestContext.CancellationToken);
        Assert.AreEqual(1, _handler.ManifestGets, "IfNotPresent and Never use the stored image");
        Assert.IsTrue(File.Exists(present.ModulePath));

        await puller.PullAsync(image, PullPolicy.Always, null, TestContext.CancellationToken);
        Assert.AreEqual(2, _handler.ManifestGets, "Always asks the registry again");
        Assert.AreEqual(2, _handler.BlobGets, "but stored blobs are not downloaded again");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Removing_an_image_and_pruning_deletes_only_its_unshared_blobs()
    {
        var first = Ref($"{Unique("prune")}:v1");
        var second = Ref($"{Unique("prune")}:v1");
        await WasmArtifactPusher.PushAsync(_client, first, WasmFixtures.C("hello"), null, TestContext.CancellationToken);
        await WasmArtifactPusher.PushAsync(_client, second, WasmFixtures.Wat(Wat.Exit(4)), null, TestContext.CancellationToken);
        var puller = Puller();
        var a = await puller.PullAsync(first, PullPolicy.Always, null, TestContext.CancellationToken);
        var b = await puller.PullAsync(second, PullPolicy.Always, null, TestContext.CancellationToken);

        Assert.IsTrue(puller.Store.Remove(first.ToString()));
        var deleted = puller.Store.Prune();

        Assert.IsTrue(deleted.Contains(a.Digest));
        Assert.IsFalse(File.Exists(a.ModulePath));
        Assert.IsTrue(File.Exists(b.ModulePath), "the other image is untouched");
        Assert.IsNotNull(puller.Store.Find(second.ToString()));
    }
}
