using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;
using Microsoft.Extensions.Configuration;

namespace Krustlet.Stages.Tests.ImagePull;

[TestClass]
public sealed class MirrorTests
{
    public TestContext TestContext { get; set; } = null!;

    private static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [TestMethod]
    public void Insecure_registries_and_mirrors_are_read_from_configuration()
    {
        var (options, problems) = RegistryOptions.Read(Config(
            ("Registries:Insecure:0", "registry.lan:5000"),
            ("Registries:Mirrors:docker.io:0", "mirror.lan"),
            ("Registries:Mirrors:docker.io:1", "mirror2.lan:443")));

        Assert.IsEmpty(problems);
        Assert.IsTrue(options!.IsInsecure("registry.lan:5000"));
        Assert.IsFalse(options.IsInsecure("registry.lan:5001"));
        Assert.IsTrue(options.IsInsecure("127.0.0.1:5000"), "loopback is always plain HTTP");
        CollectionAssert.AreEqual(new[] { "mirror.lan", "mirror2.lan:443" }, options.Mirrors["docker.io"].ToArray());
    }

    [TestMethod]
    public void A_malformed_host_is_named()
    {
        var (options, problems) = RegistryOptions.Read(Config(("Registries:Insecure:0", "http://registry.lan"), ("Registries:Mirrors:docker.io:0", "")));

        Assert.IsNull(options);
        CollectionAssert.AreEqual(
            new[]
            {
                "Registries:Insecure:0 must be a registry host or host:port without a scheme (got 'http://registry.lan').",
                "Registries:Mirrors:docker.io:0 must be a registry host or host:port without a scheme (got '').",
            },
            problems.ToArray());
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_mirror_serves_a_pull_and_the_registry_is_the_fallback()
    {
        await using var origin = await LocalRegistry.StartAsync(basicAuth: false, TestContext.CancellationToken);
        await using var mirror = await LocalRegistry.StartAsync(basicAuth: false, TestContext.CancellationToken);
        var root = Directory.CreateTempSubdirectory("krustlet-mirror-").FullName;
        using var client = new OciRegistryClient(new RegistryOptions());
        var onMirror = ImageReference.Parse($"{origin.Host}/team/mirrored:v1");
        var onlyOrigin = ImageReference.Parse($"{origin.Host}/team/origin-only:v1");
        await WasmArtifactPusher.PushAsync(client, ImageReference.Parse($"{mirror.Host}/team/mirrored:v1"), WasmFixtures.C("hello"), null, TestContext.CancellationToken);
        await WasmArtifactPusher.PushAsync(client, onlyOrigin, WasmFixtures.Wat(Wat.Returns), null, TestContext.CancellationToken);
        var options = new RegistryOptions { Mirrors = new Dictionary<string, IReadOnlyList<string>> { [origin.Host] = [mirror.Host] } };
        var puller = new ImagePuller(client, new ContentStore(root), options);

        var mirrored = await puller.PullAsync(onMirror, PullPolicy.Always, null, TestContext.CancellationToken);
        var fallback = await puller.PullAsync(onlyOrigin, PullPolicy.Always, null, TestContext.CancellationToken);

        Assert.AreEqual(WasmFixtures.Digest(WasmFixtures.C("hello")), mirrored.Digest, "the origin does not have it: the mirror served it");
        Assert.AreEqual(WasmFixtures.Digest(WasmFixtures.Wat(Wat.Returns)), fallback.Digest);
        Directory.Delete(root, recursive: true);
    }
}
