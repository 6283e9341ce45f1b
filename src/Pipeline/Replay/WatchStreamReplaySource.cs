using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
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

/// <summary>Turns the object of one watch event into a pipeline event, or says why it cannot. Called from several threads at once.</summary>
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
/// <remarks>
/// Lines are decoded ahead of the consumer on the thread pool, several batches at once, and played in
/// the file's order: the decoder must be safe to call from several threads.
/// </remarks>
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

    /// <summary>Lines decoded together by one task.</summary>
    private const int BatchLines = 256;

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
        new(() => new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, new FileStreamOptions { BufferSize = 1 << 16, Options = FileOptions.SequentialScan }), path, decoder, pace, time, logger);

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
        // Lines are read and decoded ahead, a batch per task, in parallel; batches are played in file
        // order, so the events (and every key's events) keep the stream's order. The bounded channel
        // holds at most a few batches per core: reading ahead never outruns the pipeline by much.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var batches = Channel.CreateBounded<Task<DecodedLine[]>>(new BoundedChannelOptions(2 * Environment.ProcessorCount) { SingleReader = true, SingleWriter = true });
        var reading = Task.Run(() => ReadBatchesAsync(batches.Writer, stop.Token), CancellationToken.None);
        try
        {
            var started = _time.GetTimestamp();
            while (await batches.Reader.WaitToReadAsync(cancellationToken))
            {
                while (batches.Reader.TryRead(out var decoding))
                {
                    foreach (var line in await decoding)
                    {
                        if (line.Event is null)
                        {
                            if (line.Problem is { } problem)
                            {
                                Report(line.Number, problem);
                            }

                            continue;
                        }

                        if (_pace == ReplayPace.Recorded && line.Offset is { } due)
                        {
                            var wait = due - _time.GetElapsedTime(started);
                            if (wait > TimeSpan.Zero)
                            {
                                await Task.Delay(wait, _time, cancellationToken);
                            }
                        }

                        Played++;
                        yield return line.Event!;
                    }
                }
            }

            // A failure to open or read the stream surfaces here, as it would have from a plain read.
            await reading;
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await reading;
            }
            catch (OperationCanceledException)
            {
                // Stopped reading ahead because the consumer stopped.
            }
#pragma warning disable CA1031 // Already surfaced above when the consumer read to the end; otherwise nobody asked.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    private async Task ReadBatchesAsync(ChannelWriter<Task<DecodedLine[]>> writer, CancellationToken cancellationToken)
    {
        try
        {
            using var reader = _open();
            long lineNumber = 0;
            var batch = new List<(long Number, string Text)>(BatchLines);
            while (reader.ReadLine() is { } line)
            {
                lineNumber++;
                if (!string.IsNullOrWhiteSpace(line))
                {
                    batch.Add((lineNumber, line));
                }

                if (batch.Count == BatchLines)
                {
                    await writer.WriteAsync(DecodeAsync(batch), cancellationToken);
                    batch = new List<(long Number, string Text)>(BatchLines);
                }
            }

            if (batch.Count > 0)
            {
                await writer.WriteAsync(DecodeAsync(batch), cancellationToken);
            }
        }
        finally
        {
            writer.TryComplete();
        }
    }

    private Task<DecodedLine[]> DecodeAsync(List<(long Number, string Text)> lines) =>
        Task.Run(() => lines.Select(l => Parse(l.Text, l.Number)).ToArray());

    private DecodedLine Parse(string line, long lineNumber)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException ex)
        {
            // A line is one event: its column says where.
            return DecodedLine.Skipped(lineNumber, $"not valid JSON: {Diagnostics.JsonErrorText.Describe(ex, withLine: false)}");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return DecodedLine.Skipped(lineNumber, "a watch event must be a JSON object with \"type\" and \"object\"");
            }

            if (!root.TryGetProperty("type", out var typeElement) || typeElement.ValueKind != JsonValueKind.String)
            {
                return DecodedLine.Skipped(lineNumber, "missing string property \"type\"");
            }

            TimeSpan? offset = null;
            if (root.TryGetProperty(OffsetProperty, out var offsetElement))
            {
                if (offsetElement.ValueKind != JsonValueKind.Number || !offsetElement.TryGetDouble(out var seconds) || seconds < 0 || double.IsInfinity(seconds))
                {
                    return DecodedLine.Skipped(lineNumber, $"\"{OffsetProperty}\" must be a non-negative number of seconds");
                }

                offset = TimeSpan.FromSeconds(seconds);
            }

            var type = typeElement.GetString()!;
            if (!root.TryGetProperty("object", out var obj))
            {
                return DecodedLine.Skipped(lineNumber, $"{type} event has no \"object\"");
            }

            if (obj.ValueKind != JsonValueKind.Object)
            {
                return DecodedLine.Skipped(lineNumber, $"{type} event's \"object\" must be a JSON object (got {obj.ValueKind.ToString().ToLowerInvariant()})");
            }

            switch (type)
            {
                case "BOOKMARK":
                    return DecodedLine.Skipped(lineNumber, null);
                case "ERROR":
                    var message = obj.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : obj.GetRawText();
                    return DecodedLine.Skipped(lineNumber, $"ERROR event: {message}");
                case "ADDED" or "MODIFIED" or "DELETED":
                    var evt = _decoder.Decode(type, obj, out var error);
                    return evt is null
                        ? DecodedLine.Skipped(lineNumber, error ?? "the object could not be decoded")
                        : new DecodedLine(lineNumber, evt, offset, null);
                default:
                    return DecodedLine.Skipped(lineNumber, $"unknown event type \"{type}\" (expected ADDED, MODIFIED, DELETED, BOOKMARK or ERROR)");
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

    /// <summary>One line of the stream, decoded: an event (with its offset), a problem, or neither (a bookmark).</summary>
    private sealed record DecodedLine(long Number, PipelineEvent<T>? Event, TimeSpan? Offset, string? Problem)
    {
        public static DecodedLine Skipped(long number, string? problem) => new(number, null, null, problem);
    }
}
