using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Krustlet.Http.Benchmarks;

/// <summary>One measurement of one target by one load generator.</summary>
internal sealed record LoadResult(
    string Generator,
    double Seconds,
    long Requests,
    double RequestsPerSecond,
    double P50Ms,
    double P90Ms,
    double P99Ms,
    double MaxMs,
    long Errors,
    long Connections,
    string? FirstError);

/// <summary>
/// The in-repo load generator: <c>c</c> keep-alive HTTP/1.1 connections on raw sockets, each a closed loop
/// (send <c>GET /</c>, read the whole response, send the next), for a warm-up and then a fixed duration.
/// Every response is checked (status 200, body <c>hello\n</c>); a wrong one is an error, and a closed
/// connection is reopened (counted). Throughput counts the responses that completed inside the window;
/// latency is taken for every request sent inside it, from the first byte sent to the last byte received,
/// to the microsecond (ab reports whole milliseconds).
/// </summary>
internal static class SocketLoad
{
    private static readonly byte[] HeaderEnd = "\r\n\r\n"u8.ToArray();

    public static async Task<LoadResult> RunAsync(int port, int concurrency, TimeSpan warmup, TimeSpan duration)
    {
        var request = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: krustlet-http-bench\r\n\r\n"));
        var endpoint = new IPEndPoint(IPAddress.Loopback, port);
        var from = Stopwatch.GetTimestamp() + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        var to = from + (long)(duration.TotalSeconds * Stopwatch.Frequency);

        // A request still unanswered 10 s after the window is abandoned (an error), so a stuck target cannot hang the run.
        using var abort = new CancellationTokenSource(warmup + duration + TimeSpan.FromSeconds(10));
        var workers = Enumerable.Range(0, concurrency).Select(_ => new Worker()).ToArray();
        await Task.WhenAll(workers.Select(w => Task.Run(() => w.RunAsync(endpoint, request, from, to, abort.Token))));

        var latencies = new List<double>(workers.Sum(w => w.Latencies.Count));
        foreach (var worker in workers)
        {
            latencies.AddRange(worker.Latencies.Select(t => t * 1000.0 / Stopwatch.Frequency));
        }

        latencies.Sort();
        var completed = workers.Sum(w => w.Completed);
        return new LoadResult(
            "socket",
            duration.TotalSeconds,
            completed,
            completed / duration.TotalSeconds,
            Percentile(latencies, 0.50),
            Percentile(latencies, 0.90),
            Percentile(latencies, 0.99),
            latencies.Count == 0 ? double.NaN : latencies[^1],
            workers.Sum(w => w.Errors),
            workers.Sum(w => w.Connections),
            workers.Select(w => w.FirstError).FirstOrDefault(e => e is not null));
    }

    /// <summary>Nearest-rank percentile of a sorted sample.</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double q) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Count) - 1, 0, sorted.Count - 1)];

    private sealed class Worker
    {
        private byte[] _buffer = new byte[16 * 1024];

        public List<long> Latencies { get; } = new(64 * 1024);

        public long Completed { get; private set; }

        public long Errors { get; private set; }

        public long Connections { get; private set; }

        public string? FirstError { get; private set; }

        public async Task RunAsync(IPEndPoint endpoint, byte[] request, long from, long to, CancellationToken abort)
        {
            Socket? socket = null;
            try
            {
                while (!abort.IsCancellationRequested && Stopwatch.GetTimestamp() < to)
                {
                    if (socket is null)
                    {
                        socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                        try
                        {
                            await socket.ConnectAsync(endpoint, abort);
                            Connections++;
                        }
                        catch (Exception e) when (e is SocketException or OperationCanceledException)
                        {
                            Fail(Stopwatch.GetTimestamp(), from, to, "connect: " + e.Message);
                            socket.Dispose();
                            socket = null;
                            await Task.Delay(10, CancellationToken.None);
                            continue;
                        }
                    }

                    var begin = Stopwatch.GetTimestamp();
                    (bool Valid, bool KeepAlive, string? Problem) outcome;
                    try
                    {
                        await socket.SendAsync(request, SocketFlags.None, abort);
                        outcome = await ReadResponseAsync(socket, abort);
                    }
                    catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
                    {
                        outcome = (false, false, e is OperationCanceledException ? "no response within 10 s after the window" : e.Message);
                    }

                    var end = Stopwatch.GetTimestamp();
                    if (outcome.Valid)
                    {
                        if (begin >= from && begin < to)
                        {
                            Latencies.Add(end - begin);
                        }

                        if (end >= from && end < to)
                        {
                            Completed++;
                        }
                    }
                    else
                    {
                        Fail(end, from, to, outcome.Problem ?? "invalid response");
                    }

                    if (!outcome.KeepAlive)
                    {
                        socket.Dispose();
                        socket = null;
                    }
                }
            }
            finally
            {
                socket?.Dispose();
            }
        }

        private void Fail(long at, long from, long to, string problem)
        {
            if (at >= from && at < to)
            {
                Errors++;
                FirstError ??= problem;
            }
        }

        /// <summary>Reads one response; valid when it is a 200 with the hello body.</summary>
        private async Task<(bool Valid, bool KeepAlive, string? Problem)> ReadResponseAsync(Socket socket, CancellationToken abort)
        {
            var filled = 0;
            int headerEnd;
            while ((headerEnd = _buffer.AsSpan(0, filled).IndexOf(HeaderEnd)) < 0)
            {
                if (filled == _buffer.Length)
                {
                    return (false, false, "response headers over 16 KiB");
                }

                var read = await socket.ReceiveAsync(_buffer.AsMemory(filled), SocketFlags.None, abort);
                if (read == 0)
                {
                    return (false, false, filled == 0 ? "connection closed before a response" : "connection closed in the headers");
                }

                filled += read;
            }

            var (status, contentLength, chunked, close) = ParseHead(_buffer.AsSpan(0, headerEnd));
            var bodyStart = headerEnd + HeaderEnd.Length;
            byte[] body;
            if (contentLength is { } length)
            {
                var need = bodyStart + length;
                Grow(need);
                while (filled < need)
                {
                    var read = await socket.ReceiveAsync(_buffer.AsMemory(filled, need - filled), SocketFlags.None, abort);
                    if (read == 0)
                    {
                        return (false, false, "connection closed in the body");
                    }

                    filled += read;
                }

                body = _buffer.AsSpan(bodyStart, length).ToArray();
                if (filled != need)
                {
                    return (false, false, "bytes after the response (none was asked for)");
                }
            }
            else if (chunked)
            {
                int consumed;
                while (!TryDechunk(_buffer.AsSpan(bodyStart, filled - bodyStart), out consumed, out body))
                {
                    Grow(filled + 4096);
                    var read = await socket.ReceiveAsync(_buffer.AsMemory(filled), SocketFlags.None, abort);
                    if (read == 0)
                    {
                        return (false, false, "connection closed in a chunked body");
                    }

                    filled += read;
                }

                if (bodyStart + consumed != filled)
                {
                    return (false, false, "bytes after the response (none was asked for)");
                }
            }
            else
            {
                // No length: the body runs to the end of the connection.
                while (true)
                {
                    Grow(filled + 4096);
                    var read = await socket.ReceiveAsync(_buffer.AsMemory(filled), SocketFlags.None, abort);
                    if (read == 0)
                    {
                        break;
                    }

                    filled += read;
                }

                body = _buffer.AsSpan(bodyStart, filled - bodyStart).ToArray();
                close = true;
            }

            if (status != 200)
            {
                return (false, !close, string.Create(CultureInfo.InvariantCulture, $"status {status}"));
            }

            return body.AsSpan().SequenceEqual(Hello.BodyBytes)
                ? (true, !close, null)
                : (false, !close, "body " + Probe.Escape(Encoding.UTF8.GetString(body)));
        }

        private void Grow(int size)
        {
            if (size > _buffer.Length)
            {
                Array.Resize(ref _buffer, Math.Max(size, _buffer.Length * 2));
            }
        }
    }

    /// <summary>Status code, Content-Length, chunked, and whether the server closes the connection.</summary>
    internal static (int Status, int? ContentLength, bool Chunked, bool Close) ParseHead(ReadOnlySpan<byte> head)
    {
        var text = Encoding.Latin1.GetString(head);
        var lines = text.Split("\r\n");
        var statusLine = lines[0].Split(' ', 3);
        var status = statusLine.Length >= 2 && int.TryParse(statusLine[1], NumberStyles.None, CultureInfo.InvariantCulture, out var code) ? code : 0;
        int? length = null;
        var chunked = false;

        // HTTP/1.0 responses close unless they say keep-alive.
        var close = !statusLine[0].Equals("HTTP/1.1", StringComparison.Ordinal);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                continue;
            }

            var name = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                length = int.Parse(value, CultureInfo.InvariantCulture);
            }
            else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                chunked = value.Contains("chunked", StringComparison.OrdinalIgnoreCase);
            }
            else if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase))
            {
                if (value.Contains("close", StringComparison.OrdinalIgnoreCase))
                {
                    close = true;
                }
                else if (value.Contains("keep-alive", StringComparison.OrdinalIgnoreCase))
                {
                    close = false;
                }
            }
        }

        return (status, chunked ? null : length, chunked, close);
    }

    /// <summary>Decodes a complete chunked body (RFC 9112 §7.1); false while more bytes are needed.</summary>
    internal static bool TryDechunk(ReadOnlySpan<byte> data, out int consumed, out byte[] body)
    {
        consumed = 0;
        body = [];
        var output = new List<byte>();
        var position = 0;
        while (true)
        {
            var lineEnd = data[position..].IndexOf("\r\n"u8);
            if (lineEnd < 0)
            {
                return false;
            }

            var sizeText = Encoding.Latin1.GetString(data.Slice(position, lineEnd)).Split(';', 2)[0].Trim();
            var size = int.Parse(sizeText, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            position += lineEnd + 2;
            if (size == 0)
            {
                // Trailer fields, then an empty line.
                while (true)
                {
                    var end = data[position..].IndexOf("\r\n"u8);
                    if (end < 0)
                    {
                        return false;
                    }

                    position += end + 2;
                    if (end == 0)
                    {
                        consumed = position;
                        body = [.. output];
                        return true;
                    }
                }
            }

            if (data.Length < position + size + 2)
            {
                return false;
            }

            output.AddRange(data.Slice(position, size));
            position += size + 2;
        }
    }
}

/// <summary>
/// ApacheBench: <c>ab -k -c C -t T -n N -r URL</c> (keep-alive, HTTP/1.0 with <c>Connection: Keep-Alive</c>,
/// single-threaded), stopped by whichever of N requests or T seconds comes first. Its percentiles are in
/// whole milliseconds.
/// </summary>
internal static partial class AbLoad
{
    public static async Task<(LoadResult Result, long KeepAliveRequests)> RunAsync(int port, int concurrency, long requests, TimeSpan duration, string? cpus)
    {
        // -t before -n: -t alone sets the request count to 50,000; a later -n overrides it.
        string[] args =
        [
            "-k", "-r", "-q",
            "-c", concurrency.ToString(CultureInfo.InvariantCulture),
            "-t", Math.Max(1, (int)Math.Ceiling(duration.TotalSeconds)).ToString(CultureInfo.InvariantCulture),
            "-n", requests.ToString(CultureInfo.InvariantCulture),
            string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}/"),
        ];
        using var ab = Child.Start("ab", "ab", args, cpus, tailLines: 500);
        if (!await ab.WaitForExitAsync(duration + TimeSpan.FromSeconds(60)))
        {
            throw new BenchException($"ab did not finish within {duration.TotalSeconds + 60:0} s. Its output:\n{ab.Tail()}");
        }

        var output = ab.Output();
        if (ab.ExitCode != 0)
        {
            throw new BenchException($"ab exited with {ab.ExitCode}:\n{output}");
        }

        double Field(Regex pattern, double otherwise = double.NaN)
        {
            var match = pattern.Match(output);
            return match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : otherwise;
        }

        var complete = (long)Field(Complete(), 0);
        var failed = (long)Field(Failed(), 0) + (long)Field(Non2xx(), 0);
        var seconds = Field(TimeTaken());
        return (new LoadResult(
            "ab",
            seconds,
            complete,
            Field(Rps()),
            Field(Percent50()),
            Field(Percent90()),
            Field(Percent99()),
            Field(Longest()),
            failed,
            concurrency,
            failed > 0 ? "ab counted failed or non-2xx responses" : null), (long)Field(KeepAlive(), 0));
    }

    [GeneratedRegex(@"Complete requests:\s+(\d+)")]
    private static partial Regex Complete();

    [GeneratedRegex(@"Failed requests:\s+(\d+)")]
    private static partial Regex Failed();

    [GeneratedRegex(@"Non-2xx responses:\s+(\d+)")]
    private static partial Regex Non2xx();

    [GeneratedRegex(@"Keep-Alive requests:\s+(\d+)")]
    private static partial Regex KeepAlive();

    [GeneratedRegex(@"Time taken for tests:\s+([\d.]+) seconds")]
    private static partial Regex TimeTaken();

    [GeneratedRegex(@"Requests per second:\s+([\d.]+)")]
    private static partial Regex Rps();

    [GeneratedRegex(@"^\s+50%\s+(\d+)", RegexOptions.Multiline)]
    private static partial Regex Percent50();

    [GeneratedRegex(@"^\s+90%\s+(\d+)", RegexOptions.Multiline)]
    private static partial Regex Percent90();

    [GeneratedRegex(@"^\s+99%\s+(\d+)", RegexOptions.Multiline)]
    private static partial Regex Percent99();

    [GeneratedRegex(@"^\s+100%\s+(\d+)", RegexOptions.Multiline)]
    private static partial Regex Longest();
}
