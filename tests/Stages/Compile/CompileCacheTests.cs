using System.Text;
using Krustlet.Stages.Compile;

namespace Krustlet.Stages.Tests.Compile;

[TestClass]
public sealed class CompileCacheTests
{
    private const string ExitsSeven = """
        (module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start") (call $exit (i32.const 7))))
        """;

    private static readonly WasmEngineHost Host = new(new WasmEngineOptions());

    private string _root = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void CreateRoot() => _root = Directory.CreateTempSubdirectory("krustlet-cache-").FullName;

    [TestCleanup]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    /// <summary>Runs a core module's _start on the executor's engine and returns its exit code and stdout.</summary>
    private (int ExitCode, string Stdout) Run(CompiledArtifact artifact)
    {
        var stdout = Path.Combine(_root, $"stdout-{Guid.NewGuid():N}");
        var code = Krustlet.Stages.Run.Executor.BareRun.Run(Host.Native, artifact.InstancePre!, new Krustlet.Stages.Wasmtime.Native.NativeWasiOptions { Args = ["test"], StdoutPath = stdout });
        return (code, File.ReadAllText(stdout));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task The_first_request_compiles_and_later_ones_share_the_artifact()
    {
        var path = WasmFixtures.Wat(ExitsSeven);
        var cache = new CompileCache(Host, _root);

        var first = await cache.GetAsync(WasmFixtures.Digest(path), path, TestContext.CancellationToken);
        var second = await cache.GetAsync(WasmFixtures.Digest(path), path, TestContext.CancellationToken);

        Assert.AreEqual(CompileSource.Compiled, first.Source);
        Assert.AreSame(first, second);
        Assert.AreEqual(1, cache.Compiles);
        Assert.AreEqual(1, cache.MemoryHits);
        Assert.AreEqual(WasmBinaryKind.CoreModule, first.Kind);
        Assert.IsTrue(File.Exists(cache.PathFor(first.Digest)), "the artifact is stored on disk");
        Assert.AreEqual(7, Run(first).ExitCode);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task After_a_restart_the_artifact_is_loaded_from_disk_without_compiling()
    {
        var path = WasmFixtures.C("hello");
        var digest = WasmFixtures.Digest(path);
        await new CompileCache(Host, _root).GetAsync(digest, path, TestContext.CancellationToken);

        var restarted = new CompileCache(Host, _root);
        var loaded = await restarted.GetAsync(digest, path, TestContext.CancellationToken);

        Assert.AreEqual(CompileSource.DiskCache, loaded.Source);
        Assert.AreEqual(0, restarted.Compiles);
        Assert.AreEqual(1, restarted.DiskHits);
        var (exit, stdout) = Run(loaded);
        Assert.AreEqual(0, exit);
        StringAssert.StartsWith(stdout, "hello from wasm\n");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow("truncated")]
    [DataRow("flipped")]
    [DataRow("garbage")]
    [DataRow("other-digest")]
    public async Task A_corrupt_or_foreign_cache_entry_is_discarded_and_recompiled(string damage)
    {
        var path = WasmFixtures.Wat(ExitsSeven);
        var digest = WasmFixtures.Digest(path);
        var other = WasmFixtures.C("hello");
        var first = new CompileCache(Host, _root);
        await first.GetAsync(digest, path, TestContext.CancellationToken);
        await first.GetAsync(WasmFixtures.Digest(other), other, TestContext.CancellationToken);
        var entry = first.PathFor(digest);
        var bytes = File.ReadAllBytes(entry);
        switch (damage)
        {
            case "truncated":
                File.WriteAllBytes(entry, bytes[..(bytes.Length / 2)]);
                break;
            case "flipped":
                bytes[^100] ^= 0xFF;
                File.WriteAllBytes(entry, bytes);
                break;
            case "garbage":
                File.WriteAllBytes(entry, Encoding.ASCII.GetBytes("not an artifact at all"));
                break;
            case "other-digest":
                File.Copy(first.PathFor(WasmFixtures.Digest(other)), entry, overwrite: true);
                break;
        }

        var restarted = new CompileCache(Host, _root);
        var artifact = await restarted.GetAsync(digest, path, TestContext.CancellationToken);

        Assert.AreEqual(1, restarted.Discarded);
        Assert.AreEqual(1, restarted.Compiles);
        Assert.AreEqual(7, Run(artifact).ExitCode, "the right module, not the damaged or foreign one");
        Assert.AreEqual(CompileSource.DiskCache, (await new CompileCache(Host, _root).GetAsync(digest, path, TestContext.CancellationToken)).Source, "the entry was rewritten");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_different_engine_configuration_never_reads_another_configurations_artifacts()
    {
        var path = WasmFixtures.Wat(ExitsSeven);
        var digest = WasmFixtures.Digest(path);
        await new CompileCache(Host, _root).GetAsync(digest, path, TestContext.CancellationToken);
        using var fuelled = new WasmEngineHost(new WasmEngineOptions { FuelEnabled = true });

        var cache = new CompileCache(fuelled, _root);
        var artifact = await cache.GetAsync(digest, path, TestContext.CancellationToken);

        Assert.AreNotEqual(Host.Fingerprint, fuelled.Fingerprint);
        Assert.AreEqual(CompileSource.Compiled, artifact.Source);
        Assert.AreEqual(0, cache.DiskHits);
        Assert.AreEqual(0, cache.Discarded);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Concurrent_requests_for_one_digest_compile_once()
    {
        var path = WasmFixtures.C("hello");
        var digest = WasmFixtures.Digest(path);
        var cache = new CompileCache(Host, _root);
        using var start = new Barrier(8);

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(
            () =>
            {
                start.SignalAndWait(TestContext.CancellationToken);
                return cache.GetAsync(digest, path, TestContext.CancellationToken);
            },
            TestContext.CancellationToken)));

        Assert.AreEqual(1, cache.Compiles);
        Assert.IsTrue(results.All(r => ReferenceEquals(r, results[0])));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Invalid_bytes_fail_with_the_validators_message()
    {
        var cache = new CompileCache(Host, _root);
        var invalid = WasmFixtures.File([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0xFF, 0xFF]);
        var notWasm = WasmFixtures.File(Encoding.ASCII.GetBytes("#!/bin/sh\necho I am a shell script\n"));

        var ex = await Assert.ThrowsExactlyAsync<CompileException>(() => cache.GetAsync(WasmFixtures.Digest(invalid), invalid, TestContext.CancellationToken));
        StringAssert.Contains(ex.Message, "unexpected end-of-file (at offset 0xa)");
        var notWasmEx = await Assert.ThrowsExactlyAsync<CompileException>(() => cache.GetAsync(WasmFixtures.Digest(notWasm), notWasm, TestContext.CancellationToken));
        Assert.AreEqual("not a WebAssembly module or component (no \\0asm header with a known version)", notWasmEx.Message);
        Assert.IsFalse(File.Exists(cache.PathFor(WasmFixtures.Digest(invalid))));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Bytes_that_do_not_match_their_digest_are_refused()
    {
        var path = WasmFixtures.Wat(ExitsSeven);
        var cache = new CompileCache(Host, _root);

        var ex = await Assert.ThrowsExactlyAsync<CompileException>(() => cache.GetAsync("sha256:" + new string('0', 64), path, TestContext.CancellationToken));

        StringAssert.StartsWith(ex.Message, "module content has digest sha256:");
    }

    [TestMethod]
    [DataRow(new byte[] { 0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00 }, WasmBinaryKind.CoreModule)]
    [DataRow(new byte[] { 0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00 }, WasmBinaryKind.Component)]
    [DataRow(new byte[] { 0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00 }, WasmBinaryKind.NotWasm)]
    [DataRow(new byte[] { 0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00 }, WasmBinaryKind.NotWasm)]
    [DataRow(new byte[] { 0x00, 0x61, 0x73 }, WasmBinaryKind.NotWasm)]
    public void Modules_and_components_are_told_apart_by_their_header(byte[] header, WasmBinaryKind expected) =>
        Assert.AreEqual(expected, WasmBinary.Detect(header));
}
