using System.Text.Json.Nodes;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Stages.Tests.ImagePull;

/// <summary>Importing the committed example layout (and damaged copies of it) into a content store.</summary>
[TestClass]
public sealed class OciLayoutImporterTests
{
    private string _store = null!;
    private string _layout = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void Setup()
    {
        _store = Directory.CreateTempSubdirectory("krustlet-store-").FullName;
        _layout = ExampleFiles.CopyLayout();
    }

    [TestCleanup]
    public void Cleanup()
    {
        Directory.Delete(_store, recursive: true);
        Directory.Delete(_layout, recursive: true);
    }

    private JsonObject Index => JsonNode.Parse(File.ReadAllText(Path.Combine(_layout, "index.json")))!.AsObject();

    private void SaveIndex(JsonObject index) => File.WriteAllText(Path.Combine(_layout, "index.json"), index.ToJsonString());

    private string HelloModuleBlob()
    {
        var manifestDigest = Index["manifests"]!.AsArray().Single(m => m!["annotations"]![OciLayoutImporter.RefNameAnnotation]!.GetValue<string>().EndsWith("/hello:v1", StringComparison.Ordinal))!["digest"]!.GetValue<string>();
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(_layout, "blobs", "sha256", manifestDigest[7..])))!;
        return manifest["layers"]![0]!["digest"]!.GetValue<string>();
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task The_example_layout_imports_every_image_under_its_ref_name()
    {
        var store = new ContentStore(_store);

        var records = await new OciLayoutImporter(store).ImportAsync(_layout, TestContext.CancellationToken);

        CollectionAssert.AreEqual(
            new[] { "examples.krustlet.dev/config:v1", "examples.krustlet.dev/counter:v1", "examples.krustlet.dev/crashloop:v1", "examples.krustlet.dev/hello:v1", "examples.krustlet.dev/web:v1" },
            records.Select(r => r.Reference).ToArray());
        var hello = store.Find("examples.krustlet.dev/hello:v1")!;
        Assert.AreEqual("hello.wasm", hello.ModuleName);
        Assert.AreEqual(HelloModuleBlob(), hello.ModuleDigest);
        Assert.AreEqual(0, hello.Defaults.Entrypoint.Count + hello.Defaults.Cmd.Count + hello.Defaults.Env.Count);
        Assert.IsNull(hello.Defaults.WorkingDir);
        Assert.AreEqual(3, hello.Blobs.Count, "manifest, config, module");
        CollectionAssert.AreEqual(File.ReadAllBytes(Path.Combine(_layout, "blobs", "sha256", hello.ModuleDigest[7..])), File.ReadAllBytes(store.BlobPath(hello.ModuleDigest)));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_corrupt_blob_fails_the_import_naming_it_and_records_nothing()
    {
        var module = HelloModuleBlob();
        var path = Path.Combine(_layout, "blobs", "sha256", module[7..]);
        var bytes = File.ReadAllBytes(path);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
        var store = new ContentStore(_store);

        var error = await Assert.ThrowsExactlyAsync<OciLayoutException>(() => new OciLayoutImporter(store).ImportAsync(_layout, TestContext.CancellationToken));

        StringAssert.Contains(error.Message, "failed to import image \"examples.krustlet.dev/hello:v1\"");
        StringAssert.Contains(error.Message, $"expected {module}: the content was altered or corrupted");
        Assert.AreEqual(0, store.List().Count, "no image of the layout is recorded");
        Assert.IsFalse(store.Has(module));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_missing_blob_fails_the_import_naming_its_path()
    {
        var module = HelloModuleBlob();
        File.Delete(Path.Combine(_layout, "blobs", "sha256", module[7..]));
        var store = new ContentStore(_store);

        var error = await Assert.ThrowsExactlyAsync<OciLayoutException>(() => new OciLayoutImporter(store).ImportAsync(_layout, TestContext.CancellationToken));

        StringAssert.Contains(error.Message, $"blob {module} is missing from the layout (blobs/sha256/{module[7..]})");
        Assert.AreEqual(0, store.List().Count);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_blob_of_another_size_than_its_descriptor_fails()
    {
        var index = Index;
        index["manifests"]![0]!["size"] = 1;
        SaveIndex(index);

        var error = await Assert.ThrowsExactlyAsync<OciLayoutException>(() => new OciLayoutImporter(new ContentStore(_store)).ImportAsync(_layout, TestContext.CancellationToken));

        StringAssert.Contains(error.Message, "but index.json says 1");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow(null, "has no org.opencontainers.image.ref.name annotation")]
    [DataRow("v1", "is named \"v1\", which is not a full image reference")]
    public async Task An_entry_without_a_full_ref_name_fails_the_import(string? name, string expected)
    {
        var index = Index;
        var annotations = index["manifests"]![1]!["annotations"]!.AsObject();
        annotations.Remove(OciLayoutImporter.RefNameAnnotation);
        if (name is not null)
        {
            annotations[OciLayoutImporter.RefNameAnnotation] = name;
        }

        SaveIndex(index);
        var store = new ContentStore(_store);

        var error = await Assert.ThrowsExactlyAsync<OciLayoutException>(() => new OciLayoutImporter(store).ImportAsync(_layout, TestContext.CancellationToken));

        StringAssert.Contains(error.Message, "manifests[1]");
        StringAssert.Contains(error.Message, expected);
        Assert.AreEqual(0, store.List().Count);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_directory_that_is_no_layout_is_refused()
    {
        File.Delete(Path.Combine(_layout, "oci-layout"));

        var error = await Assert.ThrowsExactlyAsync<OciLayoutException>(() => new OciLayoutImporter(new ContentStore(_store)).ImportAsync(_layout, TestContext.CancellationToken));

        StringAssert.Contains(error.Message, "not an OCI image layout");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task An_import_records_what_a_registry_pull_of_the_same_manifest_records()
    {
        await using var registry = await LocalRegistry.StartAsync(basicAuth: false, TestContext.CancellationToken);
        using var client = new OciRegistryClient(new RegistryOptions());
        var ct = TestContext.CancellationToken;
        var pushedAs = ImageReference.Parse($"{registry.Host}/examples/hello:v1");
        var entry = Index["manifests"]!.AsArray().Single(m => m!["annotations"]![OciLayoutImporter.RefNameAnnotation]!.GetValue<string>() == "examples.krustlet.dev/hello:v1")!;
        var manifestBytes = File.ReadAllBytes(Blob(entry["digest"]!.GetValue<string>()));
        var manifest = JsonNode.Parse(manifestBytes)!;
        foreach (var descriptor in new[] { manifest["config"]!, manifest["layers"]![0]! })
        {
            var digest = descriptor["digest"]!.GetValue<string>();
            await client.PushBlobAsync(pushedAs.ApiHost, pushedAs.Repository, digest, () => File.OpenRead(Blob(digest)), new FileInfo(Blob(digest)).Length, null, ct);
        }

        await client.PushManifestAsync(pushedAs.ApiHost, pushedAs.Repository, "v1", MediaTypes.OciManifest, manifestBytes, null, ct);
        var pulledStore = new ContentStore(Path.Combine(_store, "pulled"));
        await new ImagePuller(client, pulledStore, new RegistryOptions()).PullAsync(pushedAs, PullPolicy.Always, null, ct);
        var importedStore = new ContentStore(Path.Combine(_store, "imported"));
        await new OciLayoutImporter(importedStore).ImportAsync(_layout, ct);

        var pulled = pulledStore.Find(pushedAs.ToString())!;
        var imported = importedStore.Find("examples.krustlet.dev/hello:v1")!;

        Assert.AreEqual(pulled.ManifestDigest, imported.ManifestDigest);
        Assert.AreEqual(pulled.ModuleDigest, imported.ModuleDigest);
        Assert.AreEqual(pulled.ModuleName, imported.ModuleName);
        Assert.AreEqual(System.Text.Json.JsonSerializer.Serialize(pulled.Defaults), System.Text.Json.JsonSerializer.Serialize(imported.Defaults));
        CollectionAssert.AreEqual(pulled.Blobs.ToArray(), imported.Blobs.ToArray());
    }

    private string Blob(string digest) => Path.Combine(_layout, "blobs", "sha256", digest[7..]);
}
