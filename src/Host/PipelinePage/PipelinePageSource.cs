using System.Globalization;
using System.Text;
using System.Text.Json;
using Krustlet.Host.Agent;
using Krustlet.Host.KubeletApi;
using Krustlet.Stages.Run;

namespace Krustlet.Host.PipelinePage;

/// <summary>
/// What the pipeline page shows, made once per interval for every viewer: the stages (from the
/// <see cref="PipelineMonitor"/>), the bottleneck and the pods by phase, as one JSON snapshot that each
/// server-sent-events stream receives. Pages of pods and one pod's timeline and log tail are answered
/// on request, so no answer grows with the number of pods.
/// </summary>
public sealed class PipelinePageSource : IAsyncDisposable
{
    /// <summary>How many lines of each container's log the pod view shows.</summary>
    public const int LogTailLines = 50;

    /// <summary>The most pods one page of the table holds.</summary>
    public const int MaxPageSize = 200;

    private const int LogTailBytes = 32 * 1024;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly PipelineMonitor _monitor;
    private readonly NodePods _pods;
    private readonly string _nodeName;
    private readonly string _logRoot;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _ticking;
    private readonly Lock _lock = new();
    private TaskCompletionSource<string> _next = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string _latest;

    public PipelinePageSource(PipelineMonitor monitor, NodePods pods, string nodeName, string logRoot, TimeSpan interval, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(monitor);
        ArgumentNullException.ThrowIfNull(pods);
        _monitor = monitor;
        _pods = pods;
        _nodeName = nodeName;
        _logRoot = logRoot;
        _time = time ?? TimeProvider.System;
        _latest = Build();
        _ticking = TickAsync(interval);
    }

    /// <summary>The latest snapshot (JSON).</summary>
    public string Latest
    {
        get
        {
            lock (_lock)
            {
                return _latest;
            }
        }
    }

    /// <summary>Completes with the next snapshot.</summary>
    public Task<string> NextAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return _next.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>One page of pods (JSON): <c>{total, page, size, pods}</c>.</summary>
    public string PodsPage(string? phase, int page, int size)
    {
        size = Math.Clamp(size, 1, MaxPageSize);
        var (total, pods) = _pods.Page(string.IsNullOrEmpty(phase) ? null : phase, page, size);
        return JsonSerializer.Serialize(new { total, page, size, pods }, Json);
    }

    /// <summary>One pod (JSON): its summary, its status timeline and each container's log tail; null when the node does not have it.</summary>
    public string? Pod(string uid)
    {
        if (_pods.Detail(uid) is not var (pod, containers, timeline))
        {
            return null;
        }

        var start = timeline.Count > 0 ? timeline[0].At : pod.SeenAt;
        return JsonSerializer.Serialize(new
        {
            pod,
            timeline = timeline.Select(r => new
            {
                offsetSeconds = Math.Round((r.At - start).TotalSeconds, 3),
                at = r.At,
                phase = PodTimelineText.Phase(r),
                description = PodTimelineText.Describe(r),
            }),
            logs = containers.ToDictionary(c => c, c => LogTail(pod, c), StringComparer.Ordinal),
        }, Json);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _ticking;
        _stop.Dispose();
    }

    private async Task TickAsync(TimeSpan interval)
    {
        using var timer = new PeriodicTimer(interval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                var snapshot = Build();
                TaskCompletionSource<string> reached;
                lock (_lock)
                {
                    _latest = snapshot;
                    reached = _next;
                    _next = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                reached.TrySetResult(snapshot);
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }
    }

    private string Build()
    {
        var stages = _monitor.Snapshot();
        return JsonSerializer.Serialize(new
        {
            node = _nodeName,
            at = _time.GetUtcNow(),
            stages,
            bottleneck = PipelineMonitor.Bottleneck(stages),
            phases = _pods.CountByPhase(),
        }, Json);
    }

    private string[] LogTail(PodSummary pod, string container)
    {
        var directory = PodLogLayout.ContainerDirectory(_logRoot, pod.Namespace, pod.Name, pod.Uid, container);
        var runs = RunLogReader.Runs(directory);
        if (runs.Count == 0)
        {
            return [];
        }

        var path = RunLogReader.RunPath(directory, runs[^1]);
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var skipFirst = file.Length > LogTailBytes;
            file.Seek(Math.Max(0, file.Length - LogTailBytes), SeekOrigin.Begin);
            var bytes = new byte[file.Length - file.Position];
            file.ReadExactly(bytes);
            var lines = Encoding.UTF8.GetString(bytes).Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(skipFirst ? 1 : 0);
            return [.. lines.TakeLast(LogTailLines).Select(Text)];
        }
        catch (IOException)
        {
            return []; // rotated or removed between the listing and the read
        }
    }

    private static string Text(string line) =>
        CriLogEntry.Parse(Encoding.UTF8.GetBytes(line)) is { } entry
            ? string.Create(CultureInfo.InvariantCulture, $"{entry.Time:HH:mm:ss.fff} {entry.Stream.ToString().ToLowerInvariant()} {Encoding.UTF8.GetString(entry.Text)}")
            : line;
}
