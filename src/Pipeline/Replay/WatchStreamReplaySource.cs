using System.Runtime.CompilerServices;
using System.Text.Json;
using Krustlet.Pipeline.Diagnostics;
using Krustlet.Pipeline.Events;
using Microsoft.Extensions.Logging;

namespace Krustlet.Pipeline.Replay;

/// <summary>How fast a recorded stream is replayed.</summary>
public enum ReplayPace
{
    /// <summary>Every event as soon as the pipeline takes it.</summary>
    AsFastAsPossible,

    /// <summary>Each event at its recorded <c>offsetSeconds</c> after the replay started (lines without one play at once).</summary>
    Recorded,
}

/// <summary>A line of a recorded stream that was skipped, and why.</summary>
public sealed record ReplayProblem(long Line, string Message)
{
    public override string ToString() => $"line {Line}: {Message}";
}

/// <summary>Turns the object of one watch event into a pipeline event, or says why it cannot.</summary>
public interface IWatchEventDecoder<T>
{
    /// <param name="type">ADDED, MODIFIED or DELETED.</param>
    /// <param name="obj">The event's <c>object</c>.</param>
    /// <param name="error">Why the object was refused, when the result is null.</param>
    PipelineEvent<T>? Decode(string type, JsonElement obj, out string? error);
}

/// <summary>
/// Replays a recorded watch stream: newline-delimited JSON, one event per line exactly as the API server
/// sends it (<c>{"type":"ADDED","object":{...}}</c>), optionally with <c>"offsetSeconds"</c>, the time
/// since the recording started. BOOKMARK lines are skipped; ERROR lines and malformed lines are reported
/// with their line number and skipped, and the rest of the stream still plays.
/// </summary>
public sealed class WatchStreamReplaySource<T> : IEventSource<T>
{
    /// <summary>The optional per-line property that carries the recorded time, in seconds since the start.</summary>
    public const string OffsetProperty = "offsetSeconds";

    private readonly Func<TextReader> _open;
    private readonly string _description;
    private readonly IWatchEventDecoder<T> _decoder;
    private readonly ReplayPace _pace;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly List<ReplayProblem> _problems = [];

    public WatchStreamReplaySource(Func<TextReader> open, string description, IWatchEventDecoder<T> decoder, ReplayPace pace = ReplayPace.AsFastAsPossible, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(decoder);
        _open = open;
        _description = description;
        _decoder = decoder;
        _pace = pace;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    }

    /// <summary>Replays the file at <paramref name="path"/>.</summary>
    public static WatchStreamReplaySource<T> FromFile(string path, IWatchEventDecoder<T> decoder, ReplayPace pace = ReplayPace.AsFastAsPossible, TimeProvider? time = null, ILogger? logger = null) =>
        new(() => new StreamReader(path), path, decoder, pace, time, logger);

    public string Name => "replay";

    /// <summary>The lines skipped so far, with their line numbers.</summary>
    public IReadOnlyList<ReplayProblem> Problems
    {
        get
        {
            lock (_problems)
            {
                return [.. _problems];
            }
        }
    }

    /// <summary>Events played so far.</summary>
    public long Played { get; private set; }

    public async IAsyncEnumerable<PipelineEvent<T>> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var reader = _open();
        var started = _time.GetTimestamp();
        long lineNumber = 0;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var (evt, offset) = Parse(line, lineNumber);
            if (evt is null)
            {
                continue;
            }

            if (_pace == ReplayPace.Recorded && offset is { } due)
            {
                var wait = due - _time.GetElapsedTime(started);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, _time, cancellationToken);
                }
            }

            Played++;
            yield return evt;
        }
    }

    private (PipelineEvent<T>? Event, TimeSpan? Offset) Parse(string line, long lineNumber)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException ex)
        {
            Report(lineNumber, $"not valid JSON: {ex.Message}");
            return (null, null);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                Report(lineNumber, "a watch event must be a JSON object with \"type\" and \"object\"");
                return (null, null);
            }

            if (!root.TryGetProperty("type", out var typeElement) || typeElement.ValueKind != JsonValueKind.String)
            {
                Report(lineNumber, "missing string property \"type\"");
                return (null, null);
            }

            TimeSpan? offset = null;
            if (root.TryGetProperty(OffsetProperty, out var offsetElement))
            {
                if (offsetElement.ValueKind != JsonValueKind.Number || !offsetElement.TryGetDouble(out var seconds) || seconds < 0 || double.IsInfinity(seconds))
                {
                    Report(lineNumber, $"\"{OffsetProperty}\" must be a non-negative number of seconds");
                    return (null, null);
                }

                offset = TimeSpan.FromSeconds(seconds);
            }

            var type = typeElement.GetString()!;
            if (!root.TryGetProperty("object", out var obj) || obj.ValueKind != JsonValueKind.Object)
            {
                Report(lineNumber, $"{type} event has no \"object\"");
                return (null, null);
            }

            switch (type)
            {
                case "BOOKMARK":
                    return (null, null);
                case "ERROR":
                    var message = obj.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : obj.GetRawText();
                    Report(lineNumber, $"ERROR event: {message}");
                    return (null, null);
                case "ADDED" or "MODIFIED" or "DELETED":
                    var evt = _decoder.Decode(type, obj, out var error);
                    if (evt is null)
                    {
                        Report(lineNumber, error ?? "the object could not be decoded");
                    }

                    return (evt, offset);
                default:
                    Report(lineNumber, $"unknown event type \"{type}\" (expected ADDED, MODIFIED, DELETED, BOOKMARK or ERROR)");
                    return (null, null);
            }
        }
    }

    private void Report(long line, string message)
    {
        lock (_problems)
        {
            _problems.Add(new ReplayProblem(line, message));
        }

        PipelineLog.ReplayLineSkipped(_logger, _description, line, message);
    }
}
