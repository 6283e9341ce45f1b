using System.Collections.Concurrent;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Engine;

namespace Krustlet.Pipeline.Tests.Support;

/// <summary>Time limits for tests: every async test is bounded.</summary>
internal static class Limits
{
    public const int Test = 30_000;
}

/// <summary>A stage made of delegates; by default it passes every item on.</summary>
internal sealed class DelegateStage<T>(
    string name,
    Func<WorkItem<T>, CancellationToken, ValueTask<StageOutcome>>? apply = null,
    Func<WorkItem<T>, CancellationToken, ValueTask<StageOutcome>>? teardown = null) : IStage<T>
{
    public string Name => name;

    public ValueTask<StageOutcome> ApplyAsync(WorkItem<T> item, CancellationToken cancellationToken) =>
        apply?.Invoke(item, cancellationToken) ?? ValueTask.FromResult(StageOutcome.Continue);

    public ValueTask<StageOutcome> TeardownAsync(WorkItem<T> item, CancellationToken cancellationToken) =>
        teardown?.Invoke(item, cancellationToken) ?? ValueTask.FromResult(StageOutcome.Continue);
}

/// <summary>Collects results; lets a test wait for a number of them.</summary>
internal sealed class RecordingSink<T> : IResultSink<T>
{
    private readonly ConcurrentQueue<WorkResult<T>> _results = new();
    private readonly Lock _lock = new();
    private readonly List<(int Count, TaskCompletionSource Done)> _waiters = [];

    public Func<WorkResult<T>, CancellationToken, ValueTask>? OnWrite { get; set; }

    public IReadOnlyList<WorkResult<T>> Results => [.. _results];

    public IReadOnlyList<WorkResult<T>> For(string key) => [.. _results.Where(r => r.Key == key)];

    public async ValueTask WriteAsync(WorkResult<T> result, CancellationToken cancellationToken)
    {
        if (OnWrite is not null)
        {
            await OnWrite(result, cancellationToken);
        }

        _results.Enqueue(result);
        lock (_lock)
        {
            foreach (var waiter in _waiters.Where(w => _results.Count >= w.Count).ToList())
            {
                waiter.Done.TrySetResult();
                _waiters.Remove(waiter);
            }
        }
    }

    public Task WaitForCountAsync(int count, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_results.Count >= count)
            {
                return Task.CompletedTask;
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, done));
            return done.Task.WaitAsync(cancellationToken);
        }
    }
}

internal static class TestPipelines
{
    public const string Sink = "Sink";

    public static PipelineOptions Options(IEnumerable<string> stages, int parallelism = 4, int capacity = 16, TimeSpan? shutdownTimeout = null) =>
        new(stages.Append(Sink).ToDictionary(s => s, _ => new StageOptions(parallelism, capacity)))
        {
            // Short, so that a failing test does not wait long for its pipeline to dispose.
            ShutdownTimeout = shutdownTimeout ?? TimeSpan.FromSeconds(2),
            CancellationGrace = TimeSpan.FromSeconds(1),
        };

    public static StagePipeline<T> Build<T>(IEnumerable<IStage<T>> stages, IResultSink<T> sink, PipelineOptions options, TimeProvider? time = null, Krustlet.Pipeline.Diagnostics.PipelineInstruments? instruments = null)
    {
        var builder = new PipelineBuilder<T>().WithSink(Sink, sink);
        if (time is not null)
        {
            builder.WithTimeProvider(time);
        }

        if (instruments is not null)
        {
            builder.WithInstruments(instruments);
        }

        foreach (var stage in stages)
        {
            builder.AddStage(stage);
        }

        return builder.Build(options);
    }
}
