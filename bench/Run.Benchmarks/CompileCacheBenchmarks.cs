using BenchmarkDotNet.Attributes;
using Krustlet.Stages.Compile;

namespace Krustlet.Run.Benchmarks;

/// <summary>
/// The cost of getting a runnable artifact for a module: compiling it (first start), loading it from
/// the on-disk cache (first start after a restart), and finding it in memory (every later pod).
/// </summary>
[MemoryDiagnoser]
public class CompileCacheBenchmarks
{
    private WasmEngineHost _host = null!;
    private string _root = null!;
    private string _module = null!;
    private string _digest = null!;
    private string _warmCache = null!;
    private CompileCache _memoryCache = null!;
    private int _fresh;

    [GlobalSetup]
    public void Setup()
    {
        _host = new WasmEngineHost(new WasmEngineOptions());
        _root = Directory.CreateTempSubdirectory("krustlet-bench-compile-").FullName;
        _module = Modules.FromC(_root, "hello");
        _digest = Modules.Digest(_module);
        _warmCache = Path.Combine(_root, "warm");
        _memoryCache = new CompileCache(_host, _warmCache);
        _memoryCache.GetAsync(_digest, _module, CancellationToken.None).GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _host.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    /// <summary>No cache: compile, serialize and store (a new cache directory every time).</summary>
    [Benchmark(Baseline = true)]
    public Task<CompiledArtifact> Compile() =>
        new CompileCache(_host, Path.Combine(_root, $"cold-{_fresh++}")).GetAsync(_digest, _module, CancellationToken.None);

    /// <summary>A restarted agent: read, verify and deserialize the stored artifact.</summary>
    [Benchmark]
    public Task<CompiledArtifact> DiskCache() =>
        new CompileCache(_host, _warmCache).GetAsync(_digest, _module, CancellationToken.None);

    /// <summary>Another pod with the same digest in a running agent.</summary>
    [Benchmark]
    public Task<CompiledArtifact> MemoryCache() => _memoryCache.GetAsync(_digest, _module, CancellationToken.None);
}
