using System.Globalization;
using System.Text;
using System.Threading.Channels;
using k8s.Models;
using Krustlet.Stages;

namespace Krustlet.Host.Standalone;

/// <summary>
/// Renders pods as <c>kubectl get pods</c> does: NAMESPACE (optional), NAME, READY, STATUS, RESTARTS,
/// AGE, with kubectl's rules for the STATUS column (init progress, the last container's waiting or
/// terminated reason, <c>Terminating</c>) and its human durations.
/// </summary>
public static class PodTable
{
    /// <summary>The table, one line per pod in the order given, each line ending with a newline.</summary>
    public static string Render(IEnumerable<V1Pod> pods, DateTimeOffset now, bool showNamespace = false) =>
        Format(pods.Select(p => Row(p, now, showNamespace)), showNamespace);

    /// <summary>The table without its time-dependent parts (AGE and how long ago a restart was): equal when only time passed.</summary>
    internal static string Fingerprint(IEnumerable<V1Pod> pods, bool showNamespace) =>
        Format(pods.Select(p => Row(p, null, showNamespace)), showNamespace);

    private static string[] Row(V1Pod pod, DateTimeOffset? now, bool showNamespace)
    {
        var created = pod.Metadata?.CreationTimestamp;
        var age = now is null ? string.Empty : created is null ? "<unknown>" : HumanDuration(now.Value - new DateTimeOffset(DateTime.SpecifyKind(created.Value, DateTimeKind.Utc)));
        string[] row = [pod.Metadata?.Name ?? string.Empty, Ready(pod), Status(pod), Restarts(pod, now), age];
        return showNamespace ? [pod.Namespace(), .. row] : row;
    }

    private static string Format(IEnumerable<string[]> rows, bool showNamespace)
    {
        string[] header = showNamespace ? ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"] : ["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
        var all = new List<string[]> { header };
        all.AddRange(rows);
        var widths = Enumerable.Range(0, header.Length).Select(i => all.Max(r => r[i].Length)).ToArray();
        var text = new StringBuilder();
        foreach (var row in all)
        {
            // kubectl's tabwriter: columns padded to the widest cell plus three spaces, no trailing blanks.
            text.Append(string.Join("   ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd()).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>READY: app containers running and ready, of all app containers.</summary>
    public static string Ready(V1Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var ready = pod.Status?.ContainerStatuses?.Count(c => c.Ready && c.State?.Running is not null) ?? 0;
        return $"{ready}/{pod.Spec?.Containers?.Count ?? 0}";
    }

    /// <summary>STATUS, by kubectl's rules (printPod).</summary>
    public static string Status(V1Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var status = pod.Status;
        var reason = string.IsNullOrEmpty(status?.Reason) ? status?.Phase ?? "Pending" : status.Reason;
        var initializing = false;
        var inits = status?.InitContainerStatuses ?? [];
        var initCount = pod.Spec?.InitContainers?.Count ?? inits.Count;
        for (var i = 0; i < inits.Count; i++)
        {
            var state = inits[i].State;
            if (state?.Terminated is { ExitCode: 0 })
            {
                continue;
            }

            reason = state switch
            {
                { Terminated: { } t } => "Init:" + (!string.IsNullOrEmpty(t.Reason) ? t.Reason : t.Signal is { } s && s != 0 ? $"Signal:{s}" : $"ExitCode:{t.ExitCode}"),
                { Waiting.Reason: { Length: > 0 } w } when w != KubeletReasons.PodInitializing => "Init:" + w,
                _ => $"Init:{i}/{initCount}",
            };
            initializing = true;
            break;
        }

        if (!initializing)
        {
            var hasRunning = false;
            foreach (var container in (status?.ContainerStatuses ?? []).Reverse())
            {
                var state = container.State;
                if (state?.Waiting is { Reason: { Length: > 0 } waiting })
                {
                    reason = waiting;
                }
                else if (state?.Terminated is { } t)
                {
                    reason = !string.IsNullOrEmpty(t.Reason) ? t.Reason : t.Signal is { } s && s != 0 ? $"Signal:{s}" : $"ExitCode:{t.ExitCode}";
                }
                else if (state?.Running is not null && container.Ready)
                {
                    hasRunning = true;
                }
            }

            if (reason == KubeletReasons.Completed && hasRunning)
            {
                reason = status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true ? "Running" : "NotReady";
            }
        }

        if (pod.Metadata?.DeletionTimestamp is not null)
        {
            reason = status?.Reason == "NodeLost" ? "Unknown" : "Terminating";
        }

        return reason;
    }

    /// <summary>RESTARTS: the app containers' restarts, with how long ago the last one was when <paramref name="now"/> is given.</summary>
    public static string Restarts(V1Pod pod, DateTimeOffset? now)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var statuses = pod.Status?.ContainerStatuses ?? [];
        var restarts = statuses.Sum(c => c.RestartCount);
        var last = statuses.Select(c => c.LastState?.Terminated?.FinishedAt).Where(t => t is not null).Max();
        return restarts > 0 && last is { } at && now is { } clock
            ? $"{restarts} ({HumanDuration(clock - new DateTimeOffset(DateTime.SpecifyKind(at, DateTimeKind.Utc)))} ago)"
            : restarts.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>kubectl's human duration: <c>45s</c>, <c>2m5s</c>, <c>15m</c>, <c>3h20m</c>, <c>10h</c>, <c>3d4h</c>, <c>30d</c>, <c>2y10d</c>.</summary>
    public static string HumanDuration(TimeSpan duration)
    {
        var seconds = (long)duration.TotalSeconds;
        if (seconds < -1)
        {
            return "<invalid>";
        }

        if (seconds < 0)
        {
            return "0s";
        }

        if (seconds < 60 * 2)
        {
            return $"{seconds}s";
        }

        var minutes = seconds / 60;
        if (minutes < 10)
        {
            return seconds % 60 == 0 ? $"{minutes}m" : $"{minutes}m{seconds % 60}s";
        }

        if (minutes < 60 * 3)
        {
            return $"{minutes}m";
        }

        var hours = minutes / 60;
        if (hours < 8)
        {
            return minutes % 60 == 0 ? $"{hours}h" : $"{hours}h{minutes % 60}m";
        }

        if (hours < 48)
        {
            return $"{hours}h";
        }

        if (hours < 24 * 8)
        {
            return hours % 24 == 0 ? $"{hours / 24}d" : $"{hours / 24}d{hours % 24}h";
        }

        if (hours < 24 * 365 * 2)
        {
            return $"{hours / 24}d";
        }

        if (hours < 24 * 365 * 8)
        {
            var days = hours / 24 % 365;
            return days == 0 ? $"{hours / 24 / 365}y" : $"{hours / 24 / 365}y{days}d";
        }

        return $"{hours / 24 / 365}y";
    }
}

/// <summary>
/// A <see cref="PodTable"/> kept up to date on an output: on a terminal it redraws in place with ANSI
/// escapes (cursor up over the last table, clear to the end of the screen); elsewhere (logs, CI) it
/// prints the table only when something besides the passage of time changed. It redraws every
/// <see cref="Interval"/> on the injected clock and whenever <see cref="Refresh"/> is called.
/// </summary>
/// <param name="pods">Reads the pods to show, with their status, at each redraw.</param>
/// <param name="output">Where the table goes.</param>
/// <param name="isTerminal">Whether <paramref name="output"/> is a terminal (for the console: <c>!Console.IsOutputRedirected</c>).</param>
/// <param name="time">The clock of ages and of the periodic redraw.</param>
public sealed class LivePodTable(Func<IReadOnlyList<V1Pod>> pods, TextWriter output, bool isTerminal, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private int _drawnLines;
    private string? _lastFingerprint;

    /// <summary>How often the table is redrawn without being asked (ages move on).</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Whether to show the NAMESPACE column.</summary>
    public bool ShowNamespace { get; init; }

    /// <summary>How many times the table was written.</summary>
    public int Draws { get; private set; }

    /// <summary>Asks for a redraw soon (a pod changed).</summary>
    public void Refresh() => _wake.Writer.TryWrite(true);

    /// <summary>Draws now, then on every tick and refresh until <paramref name="cancellationToken"/> fires.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var timer = _time.CreateTimer(_ => Refresh(), null, Interval, Interval);
        try
        {
            while (true)
            {
                await DrawAsync(cancellationToken);
                await _wake.Reader.ReadAsync(cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // stopped
        }
    }

    /// <summary>Draws the table once (in place on a terminal; only if changed otherwise).</summary>
    public async Task DrawAsync(CancellationToken cancellationToken)
    {
        var current = pods();
        if (!isTerminal)
        {
            var fingerprint = PodTable.Fingerprint(current, ShowNamespace);
            if (fingerprint == _lastFingerprint)
            {
                return;
            }

            _lastFingerprint = fingerprint;
            await output.WriteAsync(PodTable.Render(current, _time.GetUtcNow(), ShowNamespace).AsMemory(), cancellationToken);
            await output.WriteLineAsync();
            await output.FlushAsync(cancellationToken);
            Draws++;
            return;
        }

        var table = PodTable.Render(current, _time.GetUtcNow(), ShowNamespace);
        var text = new StringBuilder();
        if (_drawnLines > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"\u001b[{_drawnLines}A"); // back to the first line of the last table
        }

        foreach (var line in table.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            text.Append('\r').Append(line).Append("\u001b[K\n"); // each line overwrites the old one and clears what is left of it
        }

        text.Append("\u001b[J"); // clears lines of a longer previous table
        _drawnLines = table.Count(c => c == '\n');
        await output.WriteAsync(text.ToString().AsMemory(), cancellationToken);
        await output.FlushAsync(cancellationToken);
        Draws++;
    }
}
