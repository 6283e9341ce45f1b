using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using k8s.Models;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.EndToEnd.Benchmarks;

/// <summary>Runs a tool and returns its standard output; throws with its standard error when it fails.</summary>
internal static class Tool
{
    public static string Run(string tool, string? workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true, WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{tool} did not start");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr.Result}");
        }

        return stdout;
    }
}

/// <summary>The benchmark's wasm modules: the sleeper guest, built with clang for wasm32-wasi, and copies of it that differ only in a custom section.</summary>
internal static class Modules
{
    public static string BuildSleeper(string directory)
    {
        var output = Path.Combine(directory, "sleeper.wasm");
        Tool.Run("clang", null, "--target=wasm32-wasi", "-O2", "-s", "-o", output, Path.Combine(AppContext.BaseDirectory, "sleeper.c"));
        return output;
    }

    /// <summary>
    /// A copy of <paramref name="module"/> with a custom section named "bench-nonce" holding
    /// <paramref name="nonce"/> appended: the same code under a new digest, so it is pulled and compiled
    /// as a new image.
    /// </summary>
    public static string WithNonce(string module, string directory, string nonce)
    {
        var name = "bench-nonce"u8.ToArray();
        var payload = System.Text.Encoding.UTF8.GetBytes(nonce);
        var content = new List<byte>();
        content.AddRange(Leb128((uint)name.Length));
        content.AddRange(name);
        content.AddRange(payload);
        var section = new List<byte> { 0 };
        section.AddRange(Leb128((uint)content.Count));
        section.AddRange(content);
        var output = Path.Combine(directory, $"sleeper-{nonce}.wasm");
        File.WriteAllBytes(output, [.. File.ReadAllBytes(module), .. section]);
        return output;
    }

    public static string Digest(string path) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    private static List<byte> Leb128(uint value)
    {
        var bytes = new List<byte>();
        do
        {
            var b = (byte)(value & 0x7f);
            value >>= 7;
            bytes.Add(value == 0 ? b : (byte)(b | 0x80));
        }
        while (value != 0);
        return bytes;
    }
}

/// <summary>Debian's docker-registry (distribution 2.8) on 127.0.0.1 with a temporary storage directory, for the pulls.</summary>
internal sealed class BenchRegistry : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _root;

    private BenchRegistry(Process process, string root, int port)
    {
        _process = process;
        _root = root;
        Host = string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{port}");
    }

    public string Host { get; }

    public static async Task<BenchRegistry> StartAsync()
    {
        var root = Directory.CreateTempSubdirectory("krustlet-bench-registry-").FullName;
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        var config = Path.Combine(root, "config.yml");
        await File.WriteAllTextAsync(config, string.Join('\n',
            "version: 0.1",
            "log: {level: warn, accesslog: {disabled: true}}",
            $"storage: {{filesystem: {{rootdirectory: {Path.Combine(root, "data")}}}, delete: {{enabled: true}}}}",
            string.Create(CultureInfo.InvariantCulture, $"http: {{addr: 127.0.0.1:{port}}}"),
            string.Empty));
        var start = new ProcessStartInfo("docker-registry") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add("serve");
        start.ArgumentList.Add(config);
        var process = Process.Start(start) ?? throw new InvalidOperationException("docker-registry did not start");
        process.ErrorDataReceived += (_, _) => { };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();

        // Ready once /v2/ answers.
        using var http = new HttpClient();
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/v2/"));
                if (response.IsSuccessStatusCode)
                {
                    break;
                }
            }
            catch (HttpRequestException) when (attempt < 200)
            {
            }

            await Task.Delay(25);
        }

        return new BenchRegistry(process, root, port);
    }

    public async ValueTask DisposeAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        Directory.Delete(_root, recursive: true);
    }
}

/// <summary>Counts the registry requests the agent's registry client sends (it takes a handler).</summary>
internal sealed class CountingHandler() : DelegatingHandler(new SocketsHttpHandler())
{
    private int _requests;
    private int _manifestGets;
    private int _blobGets;

    public int Requests => Volatile.Read(ref _requests);

    public int ManifestGets => Volatile.Read(ref _manifestGets);

    public int BlobGets => Volatile.Read(ref _blobGets);

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _requests);
        var path = request.RequestUri!.AbsolutePath;
        if (request.Method == HttpMethod.Get && path.Contains("/manifests/", StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _manifestGets);
        }

        if (request.Method == HttpMethod.Get && path.Contains("/blobs/", StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _blobGets);
        }

        return base.SendAsync(request, cancellationToken);
    }
}

/// <summary>The event source the benchmark feeds: an unbounded channel of pod events.</summary>
internal sealed class ChannelSource : IEventSource<V1Pod>
{
    private readonly Channel<PipelineEvent<V1Pod>> _channel = Channel.CreateUnbounded<PipelineEvent<V1Pod>>(new UnboundedChannelOptions { SingleReader = true });

    public string Name => "bench";

    public void Add(V1Pod pod) => _channel.Writer.TryWrite(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod));

    public void Delete(V1Pod pod) => _channel.Writer.TryWrite(PipelineEvent<V1Pod>.Delete(pod.Metadata.Uid, pod));

    public void Complete() => _channel.Writer.TryComplete();

    public IAsyncEnumerable<PipelineEvent<V1Pod>> ReadAsync(CancellationToken cancellationToken) => _channel.Reader.ReadAllAsync(cancellationToken);
}

/// <summary>What the timing writer saw for one pod, as <see cref="Stopwatch"/> timestamps.</summary>
internal sealed class PodTrack(long submitted)
{
    public long Submitted { get; set; } = submitted;

    public TaskCompletionSource<long> Running { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource<string> Failed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource<long> Deleted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public double StartMilliseconds => Running.Task.IsCompletedSuccessfully ? Stopwatch.GetElapsedTime(Submitted, Running.Task.Result).TotalMilliseconds : double.NaN;
}

/// <summary>
/// The status sink: stamps the first report with phase Running, a failure and the final (deleted) report
/// of every tracked pod, and counts every write.
/// </summary>
internal sealed class TimingWriter : IPodReportWriter
{
    private readonly ConcurrentDictionary<string, PodTrack> _tracks = new(StringComparer.Ordinal);
    private long _writes;
    private long _applied;

    private static readonly bool Trace = Environment.GetEnvironmentVariable("BENCH_TRACE") == "1";

    public long Writes => Interlocked.Read(ref _writes);

    /// <summary>Reports of work items that went through every stage (pipeline origin, kind Applied).</summary>
    public long Applied => Interlocked.Read(ref _applied);

    public PodTrack Track(string uid) => _tracks.GetOrAdd(uid, _ => new PodTrack(Stopwatch.GetTimestamp()));

    public ValueTask WriteAsync(PodReport report, CancellationToken cancellationToken)
    {
        var now = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _writes);
        if (report.Kind == PodReportKind.Applied && report.Origin == PodReportOrigin.Pipeline)
        {
            Interlocked.Increment(ref _applied);
        }

        if (_tracks.TryGetValue(report.Uid, out var track))
        {
            if (Trace)
            {
                Console.WriteLine($"trace {report.Uid} {report.Kind} {report.Origin} {report.Runtime?.Phase} {Stopwatch.GetElapsedTime(track.Submitted, now).TotalMilliseconds:0.0} ms");
            }

            if (report.Kind == PodReportKind.Deleted)
            {
                track.Deleted.TrySetResult(now);
            }
            else if (report.Kind == PodReportKind.Failed || report.Runtime?.Phase is PodPhase.Failed)
            {
                track.Failed.TrySetResult($"{report.Reason}: {report.Message}");
            }
            else if (report.Runtime?.Phase == PodPhase.Running)
            {
                track.Running.TrySetResult(now);
            }
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>Pod objects for the benchmark: one container running the sleeper with a wake-up period.</summary>
internal static class Pods
{
    public const string NodeName = "bench-node";
    public const string Namespace = "bench";

    /// <summary>A sleeper that prints one line at every wake-up (forever).</summary>
    public static V1Pod Ticker(string name, string image, int periodMilliseconds)
    {
        var pod = Sleeper(name, image, periodMilliseconds);
        pod.Spec.Containers[0].Args = [periodMilliseconds.ToString(CultureInfo.InvariantCulture), "-1", "print"];
        return pod;
    }

    public static V1Pod Sleeper(string name, string image, int periodMilliseconds, string resourceVersion = "1") => new()
    {
        ApiVersion = "v1",
        Kind = "Pod",
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = Namespace, Uid = $"uid-{name}", ResourceVersion = resourceVersion },
        Spec = new V1PodSpec
        {
            NodeName = NodeName,
            RestartPolicy = "Always",
            TerminationGracePeriodSeconds = 30,
            Containers =
            [
                new V1Container
                {
                    Name = "sleeper",
                    Image = image,
                    ImagePullPolicy = "IfNotPresent",
                    Args = [periodMilliseconds.ToString(CultureInfo.InvariantCulture)],
                },
            ],
        },
    };
}

/// <summary>Percentiles of a sample, in milliseconds.</summary>
internal sealed record Stats(int Count, double P50, double P90, double P99, double Max, double Mean)
{
    public static Stats Of(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0)
        {
            return new Stats(0, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);
        }

        var sorted = values.Order().ToArray();
        return new Stats(sorted.Length, At(sorted, 0.50), At(sorted, 0.90), At(sorted, 0.99), sorted[^1], sorted.Average());
    }

    /// <summary>Nearest-rank percentile.</summary>
    private static double At(double[] sorted, double q) => sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];
}

/// <summary>The process's own resource use, from /proc/self.</summary>
internal sealed record ProcessSample(long RssKiB, long VmSizeKiB, int Threads, int OpenFiles, int Maps, long CpuTicks)
{
    public static ProcessSample Take()
    {
        long rss = 0, size = 0;
        var threads = 0;
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                rss = Kib(line);
            }
            else if (line.StartsWith("VmSize:", StringComparison.Ordinal))
            {
                size = Kib(line);
            }
            else if (line.StartsWith("Threads:", StringComparison.Ordinal))
            {
                threads = int.Parse(line["Threads:".Length..].Trim(), CultureInfo.InvariantCulture);
            }
        }

        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

        // After the command: field 3 is state, so utime (14) and stime (15) are at 11 and 12.
        var cpu = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        var files = Directory.GetFileSystemEntries("/proc/self/fd").Length;
        var maps = File.ReadLines("/proc/self/maps").Count();
        return new ProcessSample(rss, size, threads, files, maps, cpu);
    }

    /// <summary>Clock ticks per second for utime/stime (USER_HZ, 100 on Linux).</summary>
    public const double TicksPerSecond = 100;

    private static long Kib(string line) => long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
}

/// <summary>
/// A benchmark part run in a child process of its own, so that a limit of the machine ends only that
/// part. The child prints one JSON line per sample behind a prefix (<see cref="Emit"/>); every line is
/// echoed, and the prefixed ones are returned parsed.
/// </summary>
internal static class BenchChild
{
    public sealed record Result(IReadOnlyList<JsonObject> Lines, int ExitCode, string Stderr)
    {
        /// <summary>The child's standard error, shortened to its head and tail when long.</summary>
        public string StderrExcerpt => Stderr.Length > 4000 ? Stderr[..3000] + " … " + Stderr[^1000..] : Stderr;
    }

    public static async Task<Result> RunAsync(ProcessStartInfo start, string prefix, string label)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var child = Process.Start(start) ?? throw new InvalidOperationException($"the {label} child did not start");
        var stderr = child.StandardError.ReadToEndAsync();
        var lines = new List<JsonObject>();
        while (await child.StandardOutput.ReadLineAsync() is { } line)
        {
            Console.WriteLine($"  {label}: {line}");
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                lines.Add(JsonNode.Parse(line[prefix.Length..])!.AsObject());
            }
        }

        await child.WaitForExitAsync();
        return new Result(lines, child.ExitCode, await stderr);
    }

    /// <summary>Writes one sample line for the parent (in the child).</summary>
    public static void Emit(string prefix, JsonObject line)
    {
        Console.WriteLine(prefix + line.ToJsonString());
        Console.Out.Flush();
    }
}
