using System.Diagnostics;
using System.Threading.Channels;
using System.Threading.Tasks.Dataflow;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Diagnostics;
using Krustlet.Pipeline.Events;
using Microsoft.Extensions.Logging;

namespace Krustlet.Pipeline.Engine;

/// <summary>
/// The running stage graph. Events enter through <see cref="SubmitAsync"/> (or <see cref="RunAsync"/>
/// with a source) and <see cref="Reenter"/>; the per-key gate turns them into work items; upserts travel
/// the apply path (stages in order), deletions the teardown path (stages in reverse); every item ends
/// at the result sink (the status stage). Build one with <see cref="PipelineBuilder{T}"/>.
/// </summary>
public sealed class StagePipeline<T> : IAsyncDisposable
{
    private readonly KeyedGate<T> _gate;
    private readonly IReadOnlyList<IStage<T>> _stages;
    private readonly IResultSink<T> _sink;
    private readonly PipelineOptions _options;
    private readonly PipelineInstruments _instruments;
    private readonly bool _ownsInstruments;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Action<WorkItem<T>, Activity>? _enrich;

    private readonly List<IDataflowBlock> _stageBlocks = [];
    private readonly List<IDisposable> _queueGauges = [];
    private readonly ITargetBlock<WorkItem<T>> _applyHead;
    private readonly ITargetBlock<WorkItem<T>> _teardownHead;
    private readonly ActionBlock<WorkItem<T>> _exit;

    // Work items the gate released on completion or re-entry, waiting to be sent; bounded by the number of keys.
    private readonly Channel<WorkItem<T>> _applyDispatch = Channel.CreateUnbounded<WorkItem<T>>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<WorkItem<T>> _teardownDispatch = Channel.CreateUnbounded<WorkItem<T>>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _applyPump;
    private readonly Task _teardownPump;

    private readonly CancellationTokenSource _stopAccepting = new();
    private readonly CancellationTokenSource _hardStop = new();
    private readonly Lock _abandonLock = new();
    private readonly Lock _stopLock = new();
    private readonly List<string> _abandoned = [];
    private Task<ShutdownReport>? _stopping;
    private int _drained;

    internal StagePipeline(
        IReadOnlyList<IStage<T>> stages,
        IResultSink<T> sink,
        string sinkName,
        PipelineOptions options,
        PipelineInstruments? instruments,
        ILogger logger,
        TimeProvider time,
        Action<WorkItem<T>, Activity>? enrich)
    {
        _stages = stages;
        _sink = sink;
        _options = options;
        _ownsInstruments = instruments is null;
        _instruments = instruments ?? new PipelineInstruments(null);
        _logger = logger;
        _time = time;
        _enrich = enrich;
        _gate = new KeyedGate<T>(time);

        var sinkOptions = options.For(sinkName);
        _exit = new ActionBlock<WorkItem<T>>(ExitAsync, new ExecutionDataflowBlockOptions
        {
            MaxDegreeOfParallelism = sinkOptions.Parallelism,
            BoundedCapacity = sinkOptions.Capacity,
            EnsureOrdered = false,
        });
        _queueGauges.Add(_instruments.TrackQueue(sinkName, "exit", () => _exit.InputCount));

        _applyHead = BuildPath(stages, teardown: false);
        _teardownHead = BuildPath([.. stages.Reverse()], teardown: true);
        _ = Task.WhenAll(_stageBlocks.Select(b => b.Completion)).ContinueWith(
            _ => _exit.Complete(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        _applyPump = PumpAsync(_applyDispatch.Reader, _applyHead);
        _teardownPump = PumpAsync(_teardownDispatch.Reader, _teardownHead);
    }

    /// <summary>The stages in apply order.</summary>
    public IReadOnlyList<string> StageNames => [.. _stages.Select(s => s.Name)];

    /// <summary>Keys currently in flight in the graph.</summary>
    public int InFlight => _gate.InFlightCount;

    /// <summary>
    /// Completes when no work is in flight and no event is waiting: everything submitted so far has
    /// reached the result sink. Used to finish a replay and in tests.
    /// </summary>
    public Task WaitForIdleAsync(CancellationToken cancellationToken = default) => _gate.WhenIdle().WaitAsync(cancellationToken);

    /// <summary>Completes when the graph has stopped.</summary>
    public Task Completion => _exit.Completion;

    /// <summary>
    /// Offers one event to the per-key gate. When the event becomes work and the first stage is full,
    /// this waits for room: a source that awaits it stops reading (backpressure). Nothing is dropped.
    /// </summary>
    public async ValueTask SubmitAsync(PipelineEvent<T> evt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(evt);
        var item = Admit(evt);
        if (item is null)
        {
            return;
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopAccepting.Token);
        await SendAsync(item, linked.Token);
    }

    /// <summary>
    /// Asks for the key to run through the apply path again with its latest known payload (a restart
    /// after backoff, a relist, a retry). Never waits. Returns false when nothing was scheduled: the key
    /// is unknown or deleted, an upsert for it is already waiting, or the pipeline is stopping.
    /// </summary>
    public bool Reenter(string key, string reason)
    {
        var item = Admit(PipelineEvent<T>.Reenter(key, reason), out var disposition);
        if (item is not null)
        {
            Enqueue(item);
        }

        return disposition is AdmitDisposition.Dispatched or AdmitDisposition.Pending;
    }

    /// <summary>Feeds every event of <paramref name="source"/> through <see cref="SubmitAsync"/> until it ends.</summary>
    public async Task RunAsync(IEventSource<T> source, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopAccepting.Token);
        try
        {
            await foreach (var evt in source.ReadAsync(linked.Token).WithCancellation(linked.Token))
            {
                await SubmitAsync(evt, linked.Token);
            }
        }
        catch (OperationCanceledException) when (_stopAccepting.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // The pipeline is stopping: the source simply ends.
        }
    }

    /// <summary>
    /// Stops taking events, lets in-flight work finish until <see cref="PipelineOptions.ShutdownTimeout"/>,
    /// then cancels what is left and waits <see cref="PipelineOptions.CancellationGrace"/> for it to unwind.
    /// Returns what was left. Calling it again returns the same report.
    /// </summary>
    public Task<ShutdownReport> StopAsync()
    {
        lock (_stopLock)
        {
            if (_stopping is null)
            {
                // Close the gate before returning: no event submitted after this call becomes work.
                var pending = _gate.Close();
                AddAbandoned(pending);
                PipelineLog.Stopping(_logger, _gate.InFlightCount, pending.Count);
                _stopping = StopCoreAsync();
            }

            return _stopping;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        foreach (var gauge in _queueGauges)
        {
            gauge.Dispose();
        }

        _stopAccepting.Dispose();
        _hardStop.Dispose();
        if (_ownsInstruments)
        {
            _instruments.Dispose();
        }
    }

    private async Task<ShutdownReport> StopCoreAsync()
    {
        await Task.Yield();

        // Stop senders: the source loop, waiting SubmitAsync calls and the dispatch pumps.
        await _stopAccepting.CancelAsync();
        _applyDispatch.Writer.TryComplete();
        _teardownDispatch.Writer.TryComplete();
        await Task.WhenAll(_applyPump, _teardownPump);

        _applyHead.Complete();
        _teardownHead.Complete();

        IReadOnlyList<string> cancelled = [];
        if (!await WaitAsync(_exit.Completion, _options.ShutdownTimeout))
        {
            cancelled = _gate.CancelAll();
            PipelineLog.ShutdownDeadline(_logger, _options.ShutdownTimeout, cancelled.Count);
        }

        IReadOnlyList<string> stuck = [];
        if (!await WaitAsync(_exit.Completion, _options.CancellationGrace))
        {
            stuck = _gate.InFlightKeys();
            await _hardStop.CancelAsync();
        }

        IReadOnlyList<string> abandoned;
        lock (_abandonLock)
        {
            abandoned = [.. _abandoned.Distinct(StringComparer.Ordinal)];
        }

        var report = new ShutdownReport(Volatile.Read(ref _drained), cancelled, abandoned, stuck);
        PipelineLog.Stopped(_logger, report.Drained, cancelled.Count, abandoned.Count, stuck.Count);
        return report;
    }

    private async Task<bool> WaitAsync(Task task, TimeSpan timeout)
    {
        if (task.IsCompleted)
        {
            return true;
        }

        using var cts = new CancellationTokenSource();
        var delay = Task.Delay(timeout, _time, cts.Token);
        var first = await Task.WhenAny(task, delay);
        await cts.CancelAsync();
        return first == task;
    }

    private WorkItem<T>? Admit(PipelineEvent<T> evt) => Admit(evt, out _);

    private WorkItem<T>? Admit(PipelineEvent<T> evt, out AdmitDisposition disposition)
    {
        (var item, disposition) = _gate.Admit(evt);
        var name = disposition switch
        {
            AdmitDisposition.Dispatched => "dispatched",
            AdmitDisposition.Pending => "pending",
            AdmitDisposition.Coalesced => "coalesced",
            _ => "dropped",
        };
        _instruments.Events.Add(1, new KeyValuePair<string, object?>("disposition", name));
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            PipelineLog.EventAdmitted(_logger, evt.Key, evt.Kind.ToString(), evt.Origin.ToString(), name);
        }

        return item;
    }

    private void Enqueue(WorkItem<T> item)
    {
        var writer = item.Kind == EventKind.Upsert ? _applyDispatch.Writer : _teardownDispatch.Writer;
        if (!writer.TryWrite(item))
        {
            Abandon(item);
        }
    }

    private async Task SendAsync(WorkItem<T> item, CancellationToken cancellationToken)
    {
        var target = item.Kind == EventKind.Upsert ? _applyHead : _teardownHead;
        bool accepted;
        try
        {
            var send = target.SendAsync(item, cancellationToken);
            if (!send.IsCompleted)
            {
                _instruments.BackpressureWaits.Add(1);
            }

            accepted = await send;
        }
        catch (OperationCanceledException)
        {
            Abandon(item);
            throw;
        }

        if (!accepted)
        {
            Abandon(item);
        }
    }

    private async Task PumpAsync(ChannelReader<WorkItem<T>> reader, ITargetBlock<WorkItem<T>> target)
    {
        await Task.Yield();
        await foreach (var item in reader.ReadAllAsync())
        {
            if (_stopAccepting.IsCancellationRequested)
            {
                Abandon(item);
                continue;
            }

            try
            {
                await SendAsync(item, _stopAccepting.Token);
            }
            catch (OperationCanceledException)
            {
                // Abandoned by SendAsync; the pump drains what is left.
            }
        }
    }

    // An item that was admitted but never entered the graph (its sender was cancelled, or the pipeline
    // is stopping): release the key and record what was lost. An event that was waiting behind it still
    // runs unless the pipeline is stopping, so a waiting deletion is never lost with it.
    private void Abandon(WorkItem<T> item)
    {
        AddAbandoned([item.Key]);
        var next = _gate.Complete(item);
        if (next is not null)
        {
            Enqueue(next);
        }
    }

    private void AddAbandoned(IEnumerable<string> keys)
    {
        lock (_abandonLock)
        {
            _abandoned.AddRange(keys);
        }
    }

    private ITargetBlock<WorkItem<T>> BuildPath(IReadOnlyList<IStage<T>> stages, bool teardown)
    {
        var path = teardown ? KrustletTelemetry.TeardownPath : KrustletTelemetry.ApplyPath;
        Predicate<WorkItem<T>> continues = teardown ? i => i.ContinuesOnTeardownPath : i => i.ContinuesOnApplyPath;
        Predicate<WorkItem<T>> leaves = i => !continues(i);

        TransformBlock<WorkItem<T>, WorkItem<T>>? previous = null;
        ITargetBlock<WorkItem<T>>? head = null;
        foreach (var stage in stages)
        {
            var stageOptions = _options.For(stage.Name);
            var block = new TransformBlock<WorkItem<T>, WorkItem<T>>(
                item => RunStageAsync(stage, path, teardown, item),
                new ExecutionDataflowBlockOptions
                {
                    MaxDegreeOfParallelism = stageOptions.Parallelism,
                    BoundedCapacity = stageOptions.Capacity,
                    EnsureOrdered = false,
                });
            _stageBlocks.Add(block);
            _queueGauges.Add(_instruments.TrackQueue(stage.Name, path, () => block.InputCount));

            if (previous is null)
            {
                head = block;
            }
            else
            {
                previous.LinkTo(block, new DataflowLinkOptions { PropagateCompletion = true }, continues);
                previous.LinkTo(_exit, leaves);
            }

            previous = block;
        }

        if (previous is null || head is null)
        {
            throw new InvalidOperationException("A pipeline needs at least one stage.");
        }

        previous.LinkTo(_exit);
        return head;
    }

    private async Task<WorkItem<T>> RunStageAsync(IStage<T> stage, string path, bool teardown, WorkItem<T> item)
    {
        var tags = new TagList
        {
            { KrustletTelemetry.StageTag, stage.Name },
            { KrustletTelemetry.PathTag, path },
        };
        var started = _time.GetTimestamp();
        _instruments.InFlight.Add(1, tags);
        using var activity = KrustletTelemetry.ActivitySource.StartActivity($"krustlet.stage.{stage.Name}", ActivityKind.Internal);
        if (activity is not null)
        {
            activity.SetTag(KrustletTelemetry.StageTag, stage.Name);
            activity.SetTag(KrustletTelemetry.PathTag, path);
            activity.SetTag(KrustletTelemetry.KeyTag, item.Key);
            _enrich?.Invoke(item, activity);
        }

        var token = item.CancellationToken;
        try
        {
            token.ThrowIfCancellationRequested();
            var outcome = teardown
                ? await stage.TeardownAsync(item, token)
                : await stage.ApplyAsync(item, token);
            item.Record(stage.Name, outcome);
            if (outcome.Kind == StageOutcomeKind.Failed)
            {
                _instruments.Failed.Add(1, tags);
                activity?.SetStatus(ActivityStatusCode.Error, outcome.Reason);
                PipelineLog.StageFailed(_logger, stage.Name, item.Key, outcome.Reason!, outcome.Message!);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            item.RecordCancelled(stage.Name);
            _instruments.Cancelled.Add(1, tags);
            PipelineLog.StageCancelled(_logger, stage.Name, item.Key);
        }
#pragma warning disable CA1031 // A stage's unexpected exception is that key's failure, never a faulted block.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            item.RecordFailure(new StageFailure(stage.Name, StageFailure.UnexpectedErrorReason, $"{stage.Name} stage: {ex.GetType().Name}: {ex.Message}"));
            _instruments.Failed.Add(1, tags);
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            PipelineLog.StageThrew(_logger, stage.Name, item.Key, ex);
        }
        finally
        {
            _instruments.InFlight.Add(-1, tags);
            _instruments.Processed.Add(1, tags);
            _instruments.Duration.Record(_time.GetElapsedTime(started).TotalSeconds, tags);
        }

        return item;
    }

    private async Task ExitAsync(WorkItem<T> item)
    {
        try
        {
            await _sink.WriteAsync(WorkResult<T>.From(item, _time.GetUtcNow()), _hardStop.Token);
        }
#pragma warning disable CA1031 // The sink's failure must not fault the exit block and stall every other key.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            PipelineLog.SinkThrew(_logger, item.Key, ex);
        }
        finally
        {
            if (_stopping is not null)
            {
                Interlocked.Increment(ref _drained);
            }

            var next = _gate.Complete(item);
            if (next is not null)
            {
                Enqueue(next);
            }
        }
    }
}
