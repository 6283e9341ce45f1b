using Krustlet.Stages.Compile;
using Krustlet.Stages.Run;

namespace Krustlet.Stages.Tests.Run;

/// <summary>Counts process-wide resources, so it runs alone.</summary>
[TestClass]
[DoNotParallelize]
public sealed class ExecutorPoolTests
{
    private static readonly WasmEngineHost Host = new(new WasmEngineOptions());

    public TestContext TestContext { get; set; } = null!;

    private static int OpenFileDescriptors() => Directory.GetFiles("/proc/self/fd").Length;

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task Two_hundred_short_lived_containers_leave_no_thread_handle_or_slot_behind()
    {
        var root = Directory.CreateTempSubdirectory("krustlet-pool-").FullName;
        var path = WasmFixtures.C("hello");
        var artifact = await new CompileCache(Host, Path.Combine(root, "cache")).GetAsync(WasmFixtures.Digest(path), path, TestContext.CancellationToken);
        using var pool = new ExecutorPool(Host, slots: 8);
        ContainerLaunch Launch(int i) => new($"c{i}", artifact, ["hello"], [], [], null, Path.Combine(root, "logs", $"{i}.log"), LogRotationOptions.Default);

        // Warm up once so lazily created runtime threads and handles are not counted as leaks.
        await pool.RunAsync(Launch(-1), new ContainerControl(TimeProvider.System), TestContext.CancellationToken);
        var fdsBefore = OpenFileDescriptors();

        var exits = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => pool.RunAsync(Launch(i), new ContainerControl(TimeProvider.System), TestContext.CancellationToken)));

        Assert.IsTrue(exits.All(e => e.ExitCode == 0));
        Assert.AreEqual(0, pool.Running, "every slot is free");
        Assert.AreEqual(0, pool.LiveGuests, "every guest has ended");
        Assert.IsTrue(OpenFileDescriptors() <= fdsBefore + 2, $"file descriptors: {fdsBefore} before, {OpenFileDescriptors()} after");
        Directory.Delete(root, recursive: true);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_run_waits_for_a_free_slot()
    {
        var root = Directory.CreateTempSubdirectory("krustlet-pool-").FullName;
        var path = WasmFixtures.Wat(Wat.InfiniteLoop);
        var artifact = await new CompileCache(Host, Path.Combine(root, "cache")).GetAsync(WasmFixtures.Digest(path), path, TestContext.CancellationToken);
        using var pool = new ExecutorPool(Host, slots: 1);
        var first = new ContainerControl(TimeProvider.System);
        var second = new ContainerControl(TimeProvider.System);

        var a = pool.RunAsync(new("a", artifact, ["a"], [], [], null, Path.Combine(root, "a.log"), LogRotationOptions.Default), first, TestContext.CancellationToken);
        var b = pool.RunAsync(new("b", artifact, ["b"], [], [], null, Path.Combine(root, "b.log"), LogRotationOptions.Default), second, TestContext.CancellationToken);
        Assert.AreEqual(1, pool.LiveGuests, "b has no slot, so it is not on the executor");
        Assert.IsFalse(b.IsCompleted);

        first.Kill(KillCause.Stopped("stop a"));
        await a;
        second.Kill(KillCause.Stopped("stop b"));
        Assert.AreEqual(ExitKind.Killed, (await b).Kind);
        Assert.AreEqual(0, pool.LiveGuests);
        Directory.Delete(root, recursive: true);
    }
}
