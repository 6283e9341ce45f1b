using Krustlet.Stages.ImagePull;

namespace Krustlet.Stages.Tests.ImagePull;

/// <summary>Image garbage collection under DiskPressure, over the real store and the example images.</summary>
[TestClass]
public sealed class ImageCollectorTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Unused_images_go_oldest_first_until_enough_is_freed_and_an_image_in_use_never()
    {
        var root = Directory.CreateTempSubdirectory("krustlet-gc-").FullName;
        try
        {
            var store = new ContentStore(root);
            await new OciLayoutImporter(store).ImportAsync(ExampleFiles.Layout, TestContext.CancellationToken);
            var images = store.List().OrderBy(i => i.PulledAt).ToList();
            Assert.IsGreaterThanOrEqualTo(3, images.Count, "the example layout holds several images");
            var used = images[0].Reference;
            var collector = new ImageCollector(store, minimumAge: TimeSpan.Zero);

            // One byte asked: the oldest unused image goes, nothing more.
            var first = collector.Collect([used], 1);
            CollectionAssert.AreEqual(new[] { images[1].Reference }, first.Removed.ToArray());
            Assert.IsGreaterThan(0L, first.FreedBytes);
            Assert.IsNull(store.Find(images[1].Reference));

            // Everything unused: all but the one in use, whose blobs all stay.
            collector.Collect([used], 0);
            CollectionAssert.AreEqual(new[] { used }, store.List().Select(i => i.Reference).ToArray());
            Assert.IsTrue(store.Find(used)!.Blobs.All(store.Has), "an image in use keeps every blob");
            Assert.AreEqual(store.Find(used)!.Blobs.Distinct().Count(), Directory.GetFiles(Path.Combine(root, "blobs", "sha256")).Length, "the others' blobs are deleted");

            // An image pulled or imported within the minimum age (the kubelet's 2 minutes) stays, in use or not.
            await new OciLayoutImporter(store).ImportAsync(ExampleFiles.Layout, TestContext.CancellationToken);
            Assert.IsEmpty(new ImageCollector(store).Collect([], 0).Removed);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
