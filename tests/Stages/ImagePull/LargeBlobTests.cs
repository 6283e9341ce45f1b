using System.Security.Cryptography;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Stages.Tests.ImagePull;

/// <summary>Measures process-wide allocation, so it runs alone.</summary>
[TestClass]
[DoNotParallelize]
public sealed class LargeBlobTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task A_50_MiB_layer_streams_to_disk_without_being_held_in_memory()
    {
        await using var registry = await LocalRegistry.StartAsync(basicAuth: false, TestContext.CancellationToken);
        var root = Directory.CreateTempSubdirectory("krustlet-large-").FullName;
        try
        {
            var module = Path.Combine(root, "big.wasm");
            await using (var file = File.Create(module))
            {
                // A valid module header followed by a custom section filling 50 MiB.
                var payload = 50 * 1024 * 1024;
                file.Write([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x00]);
                file.Write(ComponentFixture.Leb128((uint)payload + 1));
                file.Write([0x00]); // empty custom section name
                var chunk = new byte[1024 * 1024];
                RandomNumberGenerator.Fill(chunk);
                for (var i = 0; i < 50; i++)
                {
                    file.Write(chunk);
                }
            }

            using var client = new OciRegistryClient(new RegistryOptions());
            var image = ImageReference.Parse($"{registry.Host}/big:v1");
            await WasmArtifactPusher.PushAsync(client, image, module, null, TestContext.CancellationToken);
            var puller = new ImagePuller(client, new ContentStore(Path.Combine(root, "store")), new RegistryOptions());

            var reports = new List<PullProgress>();
            var before = GC.GetTotalAllocatedBytes(precise: true);
            var pulled = await puller.PullAsync(image, PullPolicy.Always, null, TestContext.CancellationToken, new Collect(reports));
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

            var layer = reports.Where(r => r.Digest == pulled.Digest).ToList();
            Assert.IsTrue(layer.Count(r => !r.Done) >= 12, "progress every 4 MiB of 50 MiB");
            Assert.AreEqual(new FileInfo(module).Length, layer.Single(r => r.Done).Bytes);

            Assert.AreEqual(new FileInfo(module).Length, new FileInfo(pulled.ModulePath).Length);
            Assert.AreEqual(WasmFixtures.Digest(module), pulled.Digest);
            Assert.IsTrue(allocated < 16 * 1024 * 1024, $"pulling 50 MiB allocated {allocated / 1024 / 1024} MiB");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private sealed class Collect(List<PullProgress> reports) : IProgress<PullProgress>
    {
        public void Report(PullProgress value) => reports.Add(value);
    }
}
