using BenchmarkDotNet.Attributes;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;

namespace Krustlet.Pipeline.Benchmarks;

/// <summary>
/// Events per second through a six-stage graph (five no-op stages and a counting sink) with the
/// per-key gate, for 1, 100 and 10,000 distinct pods. With one pod every event after the first
/// arrives while the pod is in flight, so most are coalesced; with many pods they flow in parallel.
/// </summary>
[MemoryDiagnoser]
public class PipelineThroughputBenchmarks
{
    private const int EventsPerRun = 500_000;

    private static readonly string[] StageNames = ["Admission", "ImagePull", "Compile", "VolumeSetup", "Run"];

    private PipelineEvent<int>[] _events = [];
    private StagePipeline<int> _pipeline = null!;
    private CountingSink _sink = null!;

    [Params(1, 100, 10_000)]
    public int Pods { get; set; }

    private sealed class NoOpStage(string name) : IStage<int>
    {
        public string Name => name;

        public ValueTask<StageOutcome> ApplyAsync(WorkItem<int> item, CancellationToken cancellationToken) => ValueTask.FromResult(StageOutcome.Continue);

        public ValueTask<StageOutcome> TeardownAsync(WorkItem<int> item, CancellationToken cancellationToken) => ValueTask.FromResult(StageOutcome.Continue);
    }

    private sealed class CountingSink : IResultSink<int>
    {
        private long _count;

        public long Count => Interlocked.Read(ref _count);

        public ValueTask WriteAsync(WorkResult<int> result, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _count);
            return ValueTask.CompletedTask;
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        var keys = Enumerable.Range(0, Pods).Select(i => $"pod-{i}").ToArray();
        _events = [.. Enumerable.Range(0, EventsPerRun).Select(i => PipelineEvent<int>.Upsert(keys[i % Pods], i))];
    }

    [IterationSetup]
    public void BuildPipeline()
    {
        _sink = new CountingSink();
        var options = new PipelineOptions(StageNames.Append("StatusReport").ToDictionary(n => n, _ => new StageOptions(Environment.ProcessorCount, 1024)));
        var builder = new PipelineBuilder<int>().WithSink("StatusReport", _sink);
        foreach (var name in StageNames)
        {
            builder.AddStage(new NoOpStage(name));
        }

        _pipeline = builder.Build(options);
    }

    [IterationCleanup]
    public void StopPipeline()
    {
        _pipeline.DisposeAsync().AsTask().GetAwaiter().GetResult();

        // How many events became work items (the rest were coalesced): printed into the run's log.
        Console.WriteLine($"// work items: {_sink.Count} of {EventsPerRun} events with {Pods} pods");
    }

    /// <summary>Submits 500,000 events and waits until every resulting work item has reached the sink.</summary>
    [Benchmark(OperationsPerInvoke = EventsPerRun)]
    public async Task<long> SubmitAndDrain()
    {
        foreach (var evt in _events)
        {
            await _pipeline.SubmitAsync(evt);
        }

        await _pipeline.WaitForIdleAsync();
        return _sink.Count;
    }
}
