using Krustlet.Host.Agent;
using Krustlet.Host.Configuration;
using Krustlet.Host.Standalone;
using Krustlet.Stages.Admission;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.PodEvents;
using Krustlet.Stages.Pressure;
using Krustlet.Stages.StatusReport;
using Krustlet.Stages.VolumeSetup;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Host.Tests.Agent;

/// <summary>
/// DiskPressure and image collection on a filesystem the test fills: the agent's data directory is a
/// 16 MiB tmpfs the test mounts; a file takes it under the kubelet's default nodefs.available&lt;10%.
/// </summary>
[TestClass]
public sealed class NodePressureOnTmpfsTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_full_data_directory_sets_DiskPressure_frees_the_unused_images_and_clears_after_the_transition_period()
    {
        await OnTmpfsAsync([], async (data, settings, store, time, runtime) =>
        {
            Assert.IsEmpty(runtime.Pressure.Active, "an empty 16 MiB filesystem is under no pressure");

            // Fill it to 5 % free: under nodefs.available<10% and imagefs.available<15%.
            var free = new DriveInfo(data).AvailableFreeSpace;
            var filler = Path.Combine(data, "filler");
            await using (var file = File.Create(filler))
            {
                file.SetLength(0);
                var chunk = new byte[1 << 20];
                for (var left = free - (Size / 20); left > 0; left -= chunk.Length)
                {
                    await file.WriteAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, left)), TestContext.CancellationToken);
                }
            }

            runtime.Pressure.Evaluate();

            var disk = runtime.Pressure.Conditions.Single(c => c.Condition == PressureCondition.DiskPressure);
            Assert.IsTrue(disk.Active, disk.Message);
            StringAssert.StartsWith(disk.Message, "the node has nodefs.available ");
            Assert.IsEmpty(store.List(), "no pod uses the images: they are collected");
            Assert.IsEmpty(Directory.GetFiles(Path.Combine(settings.ImagesDirectory, "blobs", "sha256")), "their blobs deleted");

            // Freed again: the condition holds for the transition period, then clears.
            File.Delete(filler);
            runtime.Pressure.Evaluate();
            Assert.IsTrue(runtime.Pressure.Active.Contains(PressureCondition.DiskPressure));
            time.Advance(NodePressureOptions.DefaultTransitionPeriod);
            runtime.Pressure.Evaluate();
            Assert.IsEmpty(runtime.Pressure.Active);
        });
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Above_the_image_gc_high_threshold_unused_images_go_without_any_pressure()
    {
        // No eviction thresholds: only the image collector's 85 % / 80 % apply.
        await OnTmpfsAsync([new RawSetting(SettingsCatalog.EvictionHard, "test", Text: "none")], async (data, settings, store, time, runtime) =>
        {
            // 88 % used: over the high threshold, under no pressure.
            var free = new DriveInfo(data).AvailableFreeSpace;
            await File.WriteAllBytesAsync(Path.Combine(data, "filler"), new byte[free - (Size * 12 / 100)], TestContext.CancellationToken);
            runtime.Pressure.Evaluate();

            Assert.IsEmpty(runtime.Pressure.Active);
            Assert.IsEmpty(store.List(), "unused images removed to bring usage toward the low threshold");
        });
    }

    private const long Size = 16L << 20;

    // The agent over a data directory on a 16 MiB tmpfs the test mounts, with the example images in its store.
    private async Task OnTmpfsAsync(RawSetting[] extra, Func<string, AgentSettings, ContentStore, FakeTimeProvider, AgentRuntime, Task> body)
    {
        if (!EmptyDirLimits.CanMount)
        {
            Assert.Inconclusive("the test mounts a tmpfs and needs root; it runs as another user");
        }

        var dir = Directory.CreateTempSubdirectory("krustlet-pressure-").FullName;
        var data = Directory.CreateDirectory(Path.Combine(dir, "data")).FullName;
        EmptyDirLimits.MountTmpfs(data, Size, "the test's data directory");
        try
        {
            var settings = AgentSettingsReader.Read(new SettingsInput(null, new Dictionary<string, string>(), [new RawSetting(SettingsCatalog.DataDir, "test", Text: data), .. extra]));
            var store = new ContentStore(settings.ImagesDirectory);
            await new OciLayoutImporter(store).ImportAsync(ExampleFiles.Layout, TestContext.CancellationToken);
            Assert.IsNotEmpty(store.List());
            var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
            await using var runtime = AgentRuntime.Start(settings, new AgentServices(new StaticPodResources(), new InMemoryPodReportWriter(), NullPodEventRecorder.Instance, NodeAllocatable.OfThisMachine(settings.NodeName, settings.MaxPods)), saveState: false, time: time);
            time.Advance(ImageCollector.DefaultMinimumAge + TimeSpan.FromSeconds(1)); // the images are old enough to collect
            await body(data, settings, store, time, runtime);
        }
        finally
        {
            EmptyDirLimits.RemoveDirectory(data);
            Directory.Delete(dir, recursive: true);
        }
    }
}
