using System.Buffers;
using System.Threading.Channels;
using System.Globalization;
using System.Text;
using Krustlet.Stages.Run.Executor;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Krustlet.Stages.Run.Http;

/// <summary>
/// One request's guest output as a CGI response (RFC 3875 §6): header lines up to a blank line (LF or
/// CRLF), with <c>Status:</c> and <c>Location:</c> as CGI defines them, then the body. Fed on the
/// scheduler thread after every poll of the guest; a guest that is still running has its body streamed
/// to the client as it comes (chunked), the guest held while the client catches up; a guest that ends
/// within one poll gets a response with a Content-Length. stderr is kept per request and written whole to
/// the container's CRI log, so lines of concurrent requests never mix. What the guest's end means for the
/// response is <see cref="CompleteAsync"/>'s.
/// </summary>
internal sealed class CgiResponse(HttpContext context, CriLogWriter log) : IGuestOutput
{
    /// <summary>The most header bytes a handler may write before the blank line.</summary>
    public const int MaxHeaderBytes = 64 * 1024;

    private readonly bool _noBody = HttpMethods.IsHead(context.Request.Method);
    private readonly ArrayBufferWriter<byte> _pending = new();
    private ArrayBufferWriter<byte>? _stderr;
    private byte[] _head = [];
    private int _headLength;
    private bool _headDone;
    private string? _bad;
    private int _status = StatusCodes.Status200OK;
    private string? _reason;
    private readonly List<KeyValuePair<string, string>> _headers = [];
    private bool _started;
    private Task? _flush;
    private Channel<byte[]>? _stream;
    private long _ahead;
    private TaskCompletionSource? _caughtUp;
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource _streaming = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Body bytes a streaming guest may be ahead of its client before it is held.</summary>
    private const int StreamBuffer = 1024 * 1024;

    /// <summary>Completes when the guest, still running, has written headers and part of its body: <see cref="StreamAsync"/> then.</summary>
    public Task Streaming => _streaming.Task;

    /// <summary>
    /// Starts the response and copies the streamed body to the client until the guest's end (after
    /// <paramref name="exit"/> completes nothing more is written, so the stream is closed if the guest was
    /// ended without a last drain).
    /// </summary>
    public async Task StreamAsync(Task exit)
    {
        var stream = _stream!;
        Start();
        _ = exit.ContinueWith(_ => stream.Writer.TryComplete(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        try
        {
            await foreach (var chunk in stream.Reader.ReadAllAsync(context.RequestAborted).ConfigureAwait(false))
            {
                await context.Response.BodyWriter.WriteAsync(chunk, context.RequestAborted).ConfigureAwait(false);
                BodyBytes += chunk.Length;
                CaughtUp(chunk.Length);
            }
        }
        finally
        {
            // A guest held for this client is let go whatever happened (it is being ended if the client left).
            lock (_gate)
            {
                _ahead = long.MinValue / 2;
                _caughtUp?.TrySetResult();
            }
        }
    }

    private void CaughtUp(int bytes)
    {
        lock (_gate)
        {
            _ahead -= bytes;
            if (_caughtUp is { } waiting && _ahead <= StreamBuffer / 2)
            {
                _caughtUp = null;
                waiting.TrySetResult();
            }
        }
    }

    /// <summary>Body bytes handed to the client so far.</summary>
    public long BodyBytes { get; private set; }

    /// <summary>The status the client got (or gets).</summary>
    public int StatusCode { get; private set; }

    public Task? Backpressure => _flush;

    public void Stdout(ReadOnlySpan<byte> bytes, bool final)
    {
        if (_bad is not null)
        {
            return;
        }

        if (!_headDone)
        {
            bytes = TakeHead(bytes);
            if (!_headDone)
            {
                return;
            }
        }

        if (!_noBody && _status is not (StatusCodes.Status204NoContent or StatusCodes.Status304NotModified))
        {
            _pending.Write(bytes);
        }

        if (!final && _pending.WrittenCount > 0 && _stream is null)
        {
            // The guest goes on after writing part of its body: from now on the body streams, through a
            // channel the request's task copies to the client (Kestrel is only touched from there).
            _stream = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
            _streaming.TrySetResult();
        }

        if (_stream is null)
        {
            return;
        }

        if (_pending.WrittenCount > 0)
        {
            var chunk = _pending.WrittenSpan.ToArray();
            _pending.ResetWrittenCount();
            lock (_gate)
            {
                _ahead += chunk.Length;
            }

            _stream.Writer.TryWrite(chunk);
        }

        if (final)
        {
            _stream.Writer.TryComplete();
            _flush = null;
            return;
        }

        lock (_gate)
        {
            // More than the buffer ahead of the client: the guest waits until it is half caught up.
            _flush = _ahead > StreamBuffer ? (_caughtUp ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task : null;
        }
    }

    public void Stderr(ReadOnlySpan<byte> bytes)
    {
        _stderr ??= new ArrayBufferWriter<byte>();
        _stderr.Write(bytes);
    }

    /// <summary>
    /// Answers the request from how its guest ended, after its last output: the parsed response, or the
    /// error status the failure calls for (500 a trap or a non-zero exit, 502 no parseable headers, 504 the
    /// deadline, 503 no instance). Once the response has started, a failure can only abort the connection.
    /// Returns what the access log says about it.
    /// </summary>
    public async Task<string?> CompleteAsync(ContainerExit exit, KillCause? cause, ulong droppedBytes, TimeSpan timeout)
    {
        if (_stderr is { WrittenCount: > 0 })
        {
            log.Write(LogStream.Stderr, _stderr.WrittenSpan);
            if (_stderr.WrittenSpan[^1] != (byte)'\n')
            {
                log.Write(LogStream.Stderr, "\n"u8);
            }
        }

        string? failure = null;
        var status = StatusCodes.Status200OK;
        switch (exit.Kind)
        {
            case ExitKind.Exited when exit.ExitCode == 0:
                if (droppedBytes > 0)
                {
                    (status, failure) = (StatusCodes.Status502BadGateway, $"the handler wrote more than the agent buffers within one time slice ({droppedBytes} bytes lost)");
                }
                else if (_bad is not null)
                {
                    (status, failure) = (StatusCodes.Status502BadGateway, _bad);
                }
                else if (!_headDone)
                {
                    (status, failure) = (StatusCodes.Status502BadGateway, _headLength == 0
                        ? "the handler wrote no response headers"
                        : "the handler's response headers never end (no blank line after them)");
                }

                break;
            case ExitKind.Exited:
                (status, failure) = (StatusCodes.Status500InternalServerError, $"the handler exited with code {exit.ExitCode}");
                break;
            case ExitKind.Killed when cause?.Kind == KillKind.DeadlineExceeded:
                (status, failure) = (StatusCodes.Status504GatewayTimeout, $"the request took longer than its deadline of {timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s; its instance was interrupted");
                break;
            case ExitKind.Killed:
                (status, failure) = (StatusCodes.Status503ServiceUnavailable, "the pod is stopping");
                break;
            case ExitKind.FailedToStart when exit.Message?.Contains("pool is full", StringComparison.Ordinal) == true:
                (status, failure) = (StatusCodes.Status503ServiceUnavailable, exit.Message);
                break;
            case ExitKind.Trapped:
                (status, failure) = (StatusCodes.Status500InternalServerError, $"the handler trapped: {exit.Message}");
                break;
            default:
                (status, failure) = (StatusCodes.Status500InternalServerError, $"the handler failed: {exit.Reason}: {exit.Message}");
                break;
        }

        if (failure is not null)
        {
            if (_started)
            {
                // Headers and part of the body are gone: the client must see the response fail, not end.
                context.Abort();
                return $"aborted after {BodyBytes} bytes: {failure}";
            }

            await ErrorAsync(context, status, failure).ConfigureAwait(false);
            StatusCode = status;
            return failure;
        }

        try
        {
            if (!_started)
            {
                Start();
                if (!_noBody && _status is not (StatusCodes.Status204NoContent or StatusCodes.Status304NotModified))
                {
                    context.Response.ContentLength = _pending.WrittenCount;
                }
            }

            if (_pending.WrittenCount > 0)
            {
                await context.Response.BodyWriter.WriteAsync(_pending.WrittenMemory).ConfigureAwait(false);
                BodyBytes += _pending.WrittenCount;
            }
        }
        catch (InvalidOperationException ex)
        {
            // A header value Kestrel refuses (a control character): the response is not HTTP.
            if (!context.Response.HasStarted)
            {
                context.Response.Headers.Clear();
                await ErrorAsync(context, StatusCodes.Status502BadGateway, $"the handler's response is not valid HTTP: {ex.Message}").ConfigureAwait(false);
                StatusCode = StatusCodes.Status502BadGateway;
                return ex.Message;
            }

            context.Abort();
            return $"aborted: {ex.Message}";
        }

        return null;
    }

    /// <summary>A plain-text error answer: the status and the reason, so a client sees why.</summary>
    public static async Task ErrorAsync(HttpContext context, int status, string message, int? retryAfterSeconds = null)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "text/plain; charset=utf-8";
        if (retryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }

        var body = Encoding.UTF8.GetBytes($"{status} {ReasonPhrases(status)}: {message}\n");
        response.ContentLength = body.Length;
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await response.Body.WriteAsync(body).ConfigureAwait(false);
        }
    }

    private static string ReasonPhrases(int status) => Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status);

    private void Start()
    {
        if (_started)
        {
            return;
        }

        _started = true;
        var response = context.Response;
        response.StatusCode = _status;
        StatusCode = _status;
        if (_reason is not null)
        {
            context.Features.Get<IHttpResponseFeature>()!.ReasonPhrase = _reason;
        }

        foreach (var (name, value) in _headers)
        {
            response.Headers.Append(name, value);
        }
    }

    // Collects header bytes until the blank line; returns what follows it (the body's first bytes).
    private ReadOnlySpan<byte> TakeHead(ReadOnlySpan<byte> bytes)
    {
        var room = MaxHeaderBytes - _headLength;
        var take = Math.Min(bytes.Length, room);
        if (_head.Length < _headLength + take)
        {
            Array.Resize(ref _head, Math.Max(_headLength + take, Math.Min(MaxHeaderBytes, Math.Max(256, _head.Length * 2))));
        }

        var scanFrom = Math.Max(0, _headLength - 2);
        bytes[..take].CopyTo(_head.AsSpan(_headLength));
        _headLength += take;
        var end = FindBlankLine(_head.AsSpan(0, _headLength), scanFrom);
        if (end.HeadLength < 0)
        {
            if (_headLength >= MaxHeaderBytes)
            {
                _bad = $"the handler's response headers are over {MaxHeaderBytes} bytes";
            }

            return [];
        }

        _headDone = true;
        ParseHead(_head.AsSpan(0, end.HeadLength));
        var consumedFromThis = end.BodyStart - (_headLength - take);
        return bytes[consumedFromThis..];
    }

    private readonly record struct HeadEnd(int HeadLength, int BodyStart);

    // The end of the header block: a line that is empty (LF LF or LF CR LF).
    private static HeadEnd FindBlankLine(ReadOnlySpan<byte> head, int from)
    {
        // The block may also begin with the blank line (no headers at all is not valid CGI: see ParseHead).
        for (var i = from; i < head.Length; i++)
        {
            if (head[i] != (byte)'\n')
            {
                continue;
            }

            var next = i + 1;
            if (next < head.Length && head[next] == (byte)'\n')
            {
                return new HeadEnd(i + 1, next + 1);
            }

            if (next + 1 < head.Length && head[next] == (byte)'\r' && head[next + 1] == (byte)'\n')
            {
                return new HeadEnd(i + 1, next + 2);
            }
        }

        return new HeadEnd(-1, -1);
    }

    private void ParseHead(ReadOnlySpan<byte> head)
    {
        string? status = null;
        string? location = null;
        var text = Encoding.Latin1.GetString(head);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0)
            {
                continue;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || !IsToken(line.AsSpan(0, colon)))
            {
                _bad = $"the handler's response has a header line that is not \"Name: value\": \"{Truncate(line)}\"";
                return;
            }

            var name = line[..colon];
            var value = line[(colon + 1)..].Trim();
            if (name.Equals("Status", StringComparison.OrdinalIgnoreCase))
            {
                status = value;
            }
            else if (name.Equals("Location", StringComparison.OrdinalIgnoreCase))
            {
                location = value;
                _headers.Add(new("Location", value));
            }
            else if (!IsHopByHop(name))
            {
                _headers.Add(new(name, value));
            }
        }

        if (_headers.Count == 0 && status is null)
        {
            _bad = "the handler's response has no header fields (CGI needs at least Content-Type, Location or Status)";
            return;
        }

        if (status is not null)
        {
            // Status: 3-digit code, then an optional reason phrase.
            var parts = status.Split(' ', 2, StringSplitOptions.TrimEntries);
            if (parts[0].Length != 3 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var code) || code < 100 || code > 599)
            {
                _bad = $"the handler's Status header is not a 3-digit status code: \"{Truncate(status)}\"";
                return;
            }

            _status = code;
            _reason = parts.Length > 1 && parts[1].Length > 0 ? parts[1] : null;
        }
        else if (location is not null)
        {
            _status = StatusCodes.Status302Found; // RFC 3875 §6.2.3/6.2.4: a redirect
        }
    }

    private static bool IsHopByHop(string name) =>
        name.Equals("Connection", StringComparison.OrdinalIgnoreCase)
        || name.Equals("Keep-Alive", StringComparison.OrdinalIgnoreCase)
        || name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)
        || name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) // the agent frames the body itself
        || name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase)
        || name.Equals("TE", StringComparison.OrdinalIgnoreCase)
        || name.Equals("Trailer", StringComparison.OrdinalIgnoreCase);

    private static bool IsToken(ReadOnlySpan<char> name)
    {
        foreach (var c in name)
        {
            if (c <= ' ' || c >= 127 || "()<>@,;:\\\"/[]?={}".Contains(c, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    private static string Truncate(string text) => text.Length <= 80 ? text : text[..80] + "…";
}
