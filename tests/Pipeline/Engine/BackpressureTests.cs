using System.Runtime.CompilerServices;
using Krustlet.Pipeline.Diagnostics;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Krustlet.Pipeline.Tests.Engine;

[TestClass]
public sealed class BackpressureTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>A source that counts how many events the pipeline has pulled from it.</summary>
    private sealed class CountingSource(int count) : IEventSource<int>
    {
        private readonly Dictionary<int, TaskCompletionSource> _reads = [];
        private int _read;

        public string Name => "counting";

        public int Read => Volatile.Read(ref _read);

        /// <summary>Completes once the source has handed out <paramref name="n"/> events.</summary>
        public Task WhenRead(int n)
        {
            lock (_reads)
            {
                if (Read >= n)
                {
                    return Task.CompletedTask;
                }

                if (!_reads.TryGetValue(n, out var tcs))
                {
                    _reads[n] = tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                return tcs.Task;
            }
        }

        public async IAsyncEnumerable<PipelineEvent<int>> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.CompletedTask;
            for (var i = 0; i < count; i++)
            {
                var read = Interlocked.Increment(ref _read);
                lock (_reads)
                {
                    if (_reads.Remove(read, out var reached))
                    {
                        reached.SetResult();
                    }
                }

                yield return PipelineEvent<int>.Upsert($"pod-{i}", i);
            }
        }
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow(1, 1)]
    [DataRow(1, 3)]
    [DataRow(2, 5)]
    public async Task A_full_stage_stops_the_source_reading_and_nothing_is_dropped(int parallelism, int capacity)
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var instruments = new PipelineInstruments(services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
        using var waits = new MetricCollector<long>(instruments.BackpressureWaits);

        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stage = new DelegateStage<int>("Run", async (_, ct) =>
        {
            await gate.Task.WaitAsync(ct);
            return StageOutcome.Continue;
        });
        var sink = new RecordingSink<int>();
        await using var pipeline = TestPipelines.Build([stage], sink, TestPipelines.Options(["Run"], parallelism, capacity), instruments: instruments);
        const int events = 40;
        var source = new CountingSource(events);

        var running = pipeline.RunAsync(source, TestContext.CancellationToken);
        await waits.WaitForMeasurementsAsync(1).WaitAsync(TestContext.CancellationToken);

        // The stage holds `capacity` items (waiting and in progress); the source has handed over one more,
        // which waits in SendAsync, and has not been asked for another.
        Assert.AreEqual(capacity + 1, source.Read);
        Assert.IsFalse(running.IsCompleted);
        Assert.IsEmpty(sink.Results);

        gate.SetResult();
        await running;
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        Assert.AreEqual(events, source.Read);
        Assert.HasCount(events, sink.Results);
        CollectionAssert.AreEquivalent(Enumerable.Range(0, events).ToArray(), sink.Results.Select(r => r.Item.Value).ToArray());
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_slow_status_stage_holds_back_the_graph_and_the_source()
    {
        using var instruments = new PipelineInstruments(null);
        using var waits = new MetricCollector<long>(instruments.BackpressureWaits);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sink = new RecordingSink<int> { OnWrite = async (_, ct) => await gate.Task.WaitAsync(ct) };
        var stages = new[] { "A", "B" }.Select(n => new DelegateStage<int>(n));
        await using var pipeline = TestPipelines.Build(stages, sink, TestPipelines.Options(["A", "B"], parallelism: 1, capacity: 2), instruments: instruments);
        var source = new CountingSource(30);

        var running = pipeline.RunAsync(source, TestContext.CancellationToken);

        // Room in the graph: the status stage holds 2 (one being written), stages A and B 2 each; the
        // source hands over one more, which waits in SendAsync, and then reads no further.
        const int full = 2 + 2 + 2 + 1;
        await source.WhenRead(full).WaitAsync(TestContext.CancellationToken);
        await waits.WaitForMeasurementsAsync(1).WaitAsync(TestContext.CancellationToken);
        Assert.AreEqual(full, source.Read);
        Assert.IsFalse(running.IsCompleted);

        gate.SetResult();
        await running;
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);
        Assert.HasCount(30, sink.Results);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow(1)]
    [DataRow(3)]
    public async Task A_stage_never_runs_more_items_than_its_parallelism(int parallelism)
    {
        // Items that find a free slot run on the thread that brought them; the slots still bound them.
        var running = 0;
        var most = 0;
        var first = new DelegateStage<int>("A");
        var counted = new DelegateStage<int>("B", async (_, _) =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref most, now);
            await Task.Yield();
            Interlocked.Decrement(ref running);
            return StageOutcome.Continue;
        });
        var sink = new RecordingSink<int>();
        await using var pipeline = TestPipelines.Build([first, counted], sink, TestPipelines.Options(["A", "B"], parallelism, capacity: 8));

        await pipeline.RunAsync(new CountingSource(500), TestContext.CancellationToken);
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        Assert.HasCount(500, sink.Results);
        Assert.IsLessThanOrEqualTo(parallelism, most);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        for (var seen = Volatile.Read(ref target); value > seen; seen = Volatile.Read(ref target))
        {
            if (Interlocked.CompareExchange(ref target, value, seen) == seen)
            {
                return;
            }
        }
    }
}
