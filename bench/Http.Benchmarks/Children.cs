using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Krustlet.Http.Benchmarks;

/// <summary>
/// A process the harness started (a target or a load generator): its output is drained into a bounded
/// tail, and every live child is killed when the harness exits, is interrupted (Ctrl-C, SIGTERM) or fails.
/// </summary>
internal sealed class Child : IDisposable
{
    private static readonly List<Child> Live = [];
    private static int _hooked;

    private readonly Queue<string> _tail = new();
    private readonly Process _process;
    private readonly List<Action<string>> _watchers = [];

    /// <summary>Set for the harness's own generator only, never passed to a child.</summary>
    public const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    private readonly int _tailLines;

    private Child(string label, Process process, int tailLines)
    {
        Label = label;
        _process = process;
        _tailLines = tailLines;
    }

    public string Label { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>
    /// Starts <paramref name="program"/> with <paramref name="args"/>, under <c>taskset -c cpus</c> when
    /// <paramref name="cpus"/> is given (taskset execs, so the pid is the program's). Standard input is a
    /// pipe the harness never writes: the harness's own children exit when it closes (the harness died).
    /// The last <paramref name="tailLines"/> lines of output are kept.
    /// </summary>
    public static Child Start(string label, string program, IEnumerable<string> args, string? cpus, IReadOnlyDictionary<string, string>? environment = null, int tailLines = 40)
    {
        HookExit();
        var start = new ProcessStartInfo(cpus is null ? program : "taskset")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (cpus is not null)
        {
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(cpus);
            start.ArgumentList.Add(program);
        }

        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove(InlineCompletions);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var child = new Child(label, process, tailLines);
        process.OutputDataReceived += (_, e) => child.Line(e.Data, "");
        process.ErrorDataReceived += (_, e) => child.Line(e.Data, "stderr: ");
        lock (Live)
        {
            if (!process.Start())
            {
                throw new InvalidOperationException($"{label}: {program} did not start");
            }

            Live.Add(child);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>The last lines the child wrote (stdout and stderr, interleaved as they arrived), indented.</summary>
    public string Tail()
    {
        lock (_tail)
        {
            return _tail.Count == 0 ? "    (no output)" : string.Join('\n', _tail.Select(l => "    " + l));
        }
    }

    /// <summary>The kept lines as written.</summary>
    public string Output()
    {
        lock (_tail)
        {
            return string.Join('\n', _tail);
        }
    }

    /// <summary>Completes when the child writes a line containing <paramref name="text"/>.</summary>
    public Task<string> WaitForLineAsync(string text)
    {
        var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_tail)
        {
            foreach (var line in _tail)
            {
                if (line.Contains(text, StringComparison.Ordinal))
                {
                    found.TrySetResult(line);
                    return found.Task;
                }
            }

            _watchers.Add(line =>
            {
                if (line.Contains(text, StringComparison.Ordinal))
                {
                    found.TrySetResult(line);
                }
            });
        }

        return found.Task;
    }

    /// <summary>The process's resident set (VmRSS) and thread count, from /proc/&lt;pid&gt;/status.</summary>
    public (long RssKiB, int Threads) Memory()
    {
        long rss = 0;
        var threads = 0;
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                rss = long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("Threads:", StringComparison.Ordinal))
            {
                threads = int.Parse(line["Threads:".Length..].Trim(), CultureInfo.InvariantCulture);
            }
        }

        return (rss, threads);
    }

    /// <summary>
    /// CPU time of the process and of its children it has waited for (utime + stime + cutime + cstime, in
    /// seconds): the CGI target's per-request processes count as its own.
    /// </summary>
    public double CpuSeconds()
    {
        var stat = File.ReadAllText($"/proc/{Pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

        // After the command: field 3 (state) is at 0, so utime..cstime (14..17) are at 11..14.
        var ticks = 0L;
        for (var i = 11; i <= 14; i++)
        {
            ticks += long.Parse(fields[i], CultureInfo.InvariantCulture);
        }

        return ticks / 100.0;
    }

    /// <summary>Waits for the process to exit on its own, killing it after <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);

            // The asynchronous output readers finish after the exit; wait for them too.
            _process.WaitForExit();
            return true;
        }
        catch (OperationCanceledException)
        {
            Kill();
            return false;
        }
    }

    /// <summary>Kills the process (and anything it started) and waits for it briefly.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // never started or already gone
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // already gone
        }
    }

    /// <summary>Asks the process to stop (SIGTERM: the agent stops its pods), then kills it after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (_process.HasExited)
        {
            return;
        }

        try
        {
            Tool.Run("kill", "-TERM", Pid.ToString(CultureInfo.InvariantCulture));
        }
        catch (InvalidOperationException)
        {
            // exited in between
        }

        if (!await WaitForExitAsync(grace))
        {
            Console.Error.WriteLine($"{Label}: still running {grace.TotalSeconds:0} s after SIGTERM, killed");
        }
    }

    public void Dispose()
    {
        Kill();
        lock (Live)
        {
            Live.Remove(this);
        }

        _process.Dispose();
    }

    private void Line(string? data, string prefix)
    {
        if (data is null)
        {
            return;
        }

        var line = prefix + data;
        Action<string>[] watchers;
        lock (_tail)
        {
            _tail.Enqueue(line);
            while (_tail.Count > _tailLines)
            {
                _tail.Dequeue();
            }

            watchers = [.. _watchers];
        }

        foreach (var watcher in watchers)
        {
            watcher(line);
        }
    }

    private static void HookExit()
    {
        if (Interlocked.Exchange(ref _hooked, 1) == 1)
        {
            return;
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
        AppDomain.CurrentDomain.UnhandledException += (_, _) => KillAll();

        // Ctrl-C, kill, a closed terminal: the children go first, then the signal's default (the harness ends).
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP, PosixSignal.SIGQUIT })
        {
            Signals.Add(PosixSignalRegistration.Create(signal, _ =>
            {
                KillAll();
                RemoveScratch();
            }));
        }
    }

    private static readonly List<PosixSignalRegistration> Signals = [];

    private static readonly List<string> Scratch = [];

    /// <summary>A directory removed when a signal ends the harness (a normal exit removes it itself).</summary>
    public static void RemoveOnSignal(string directory)
    {
        lock (Scratch)
        {
            Scratch.Add(directory);
        }
    }

    private static void RemoveScratch()
    {
        string[] directories;
        lock (Scratch)
        {
            directories = [.. Scratch];
        }

        foreach (var directory in directories)
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
                // the agent's files may still be closing; leave it
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private static void KillAll()
    {
        Child[] live;
        lock (Live)
        {
            live = [.. Live];
        }

        foreach (var child in live)
        {
            child.Kill();
        }
    }
}

/// <summary>Free loopback ports, found by binding port 0.</summary>
internal static class Ports
{
    /// <summary><paramref name="count"/> distinct free ports: every listener is held until all are chosen.</summary>
    public static int[] Free(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                listeners.Add(listener);
            }

            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Stop();
                listener.Dispose();
            }
        }
    }

    public static int Free() => Free(1)[0];
}

/// <summary>Runs a tool to completion and returns its standard output; throws with its standard error when it fails.</summary>
internal static class Tool
{
    public static string Run(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{tool} did not start");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(120_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish within 2 minutes");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr.Result}");
        }

        return stdout;
    }

    /// <summary>A one-line description of a tool's version, or "missing".</summary>
    public static string Version(string tool, params string[] args)
    {
        try
        {
            var output = Run(tool, args);
            return new StringReader(output).ReadLine()?.Trim() ?? "";
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException or TimeoutException)
        {
            return "missing";
        }
    }
}

/// <summary>Plain HTTP/1.1 probes of a target: does it answer, and with the right bytes.</summary>
internal static class Probe
{
    /// <summary>
    /// One GET of <c>/</c> on 127.0.0.1:<paramref name="port"/> (a new connection); the status code and the
    /// body, or null when nothing answered (refused, reset, timed out).
    /// </summary>
    public static async Task<(int Status, string ContentType, string Body)?> GetAsync(int port, TimeSpan timeout)
    {
        using var http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero, ConnectTimeout = timeout }) { Timeout = timeout };
        try
        {
            using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/"));
            var body = await response.Content.ReadAsStringAsync();
            return ((int)response.StatusCode, response.Content.Headers.ContentType?.ToString() ?? "", body);
        }
        catch (HttpRequestException)
        {
            return null;
        }
        catch (TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>
    /// Polls the port until it answers 200 with the hello body, the child exits, or <paramref name="timeout"/>
    /// passes; throws with what it saw, the child's output tail and <paramref name="diagnose"/>'s text otherwise.
    /// </summary>
    public static async Task WaitForHelloAsync(Child child, int port, TimeSpan timeout, string what, Func<string>? diagnose = null)
    {
        var deadline = Stopwatch.StartNew();
        string last = "nothing answered (connection refused or timed out)";
        while (deadline.Elapsed < timeout)
        {
            if (child.HasExited)
            {
                throw new BenchException($"{what}: {child.Label} exited with code {child.ExitCode} before 127.0.0.1:{port} answered. Its output:\n{child.Tail()}{diagnose?.Invoke()}");
            }

            if (await GetAsync(port, TimeSpan.FromSeconds(2)) is { } answer)
            {
                if (answer.Status == 200 && answer.Body == Hello.Body && answer.ContentType.StartsWith("text/plain", StringComparison.Ordinal))
                {
                    return;
                }

                last = string.Create(CultureInfo.InvariantCulture, $"it answered {answer.Status} ({answer.ContentType}) {Escape(answer.Body)}");
            }

            await Task.Delay(100);
        }

        throw new BenchException($"{what}: 127.0.0.1:{port} did not answer 200 \"hello\\n\" within {timeout.TotalSeconds:0} s ({last}). {child.Label}'s output:\n{child.Tail()}{diagnose?.Invoke()}");
    }

    public static string Escape(string text)
    {
        var shown = text.Length > 200 ? text[..200] + "…" : text;
        var builder = new StringBuilder("\"");
        foreach (var c in shown)
        {
            builder.Append(c switch { '\n' => "\\n", '\r' => "\\r", '"' => "\\\"", _ => c.ToString() });
        }

        return builder.Append('"').ToString();
    }
}

/// <summary>A failure the harness explains itself (printed without a stack trace).</summary>
internal sealed class BenchException(string message) : Exception(message);
