using System.Globalization;

namespace Krustlet.Http.Benchmarks;

/// <summary>The harness's command line (see <see cref="Usage"/>).</summary>
internal sealed record Options
{
    public const string Usage = """
        usage: dotnet run -c Release --project bench/Http.Benchmarks -- [options]
          --rounds R          interleaved rounds (agent, kestrel, cgi, then again); medians are reported (3)
          --duration S        seconds measured per target, generator and round (5); ab stops at S or N
          --warmup S          seconds of load before the in-repo generator's window (1)
          --requests N        ab's -n (1000000; the duration usually ends it first)
          --concurrency C     connections (32)
          --generator G       socket (the in-repo generator), ab, or both (both)
          --part P            all, load (the throughput rounds) or rss (the idle-pods memory figure) (all)
          --skip-agent        only the two baselines (until the agent serves handlers)
          --idle-pods N       handler pods for the RSS figure (100); 0 skips it
          --settle S          seconds the agent idles before each RSS sample (10)
          --ready-timeout S   how long a target may take to answer its first request (60)
          --agent PATH        krustlet.dll (default: src/Host/bin/Release/net10.0/krustlet.dll of this repo)
          --target-cpus LIST  taskset CPU list for the targets (0)
          --load-cpus LIST    taskset CPU list for the load generators (1)
          --no-pin            no taskset: targets and generators share every CPU
          --json PATH         also write the JSON lines to PATH
          --keep              keep the work directory (printed at the start)
        """;

    public int Rounds { get; init; } = 3;

    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(5);

    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);

    public long Requests { get; init; } = 1_000_000;

    public int Concurrency { get; init; } = 32;

    public bool Socket { get; init; } = true;

    public bool Ab { get; init; } = true;

    public bool SkipAgent { get; init; }

    public bool Load { get; init; } = true;

    public bool Rss { get; init; } = true;

    public int IdlePods { get; init; } = 100;

    public TimeSpan Settle { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public string? Agent { get; init; }

    public string? TargetCpus { get; init; } = "0";

    public string? LoadCpus { get; init; } = "1";

    public string? Json { get; init; }

    public bool Keep { get; init; }

    public static Options Parse(IReadOnlyList<string> args)
    {
        var options = new Options();
        for (var i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new BenchException($"{args[i]} needs a value\n{Usage}");
            int Int() => int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : throw new BenchException($"{args[i - 1]} needs a whole number\n{Usage}");
            TimeSpan Seconds() => double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= 0 ? TimeSpan.FromSeconds(v) : throw new BenchException($"{args[i - 1]} needs seconds\n{Usage}");
            options = args[i] switch
            {
                "--rounds" => options with { Rounds = Math.Max(1, Int()) },
                "--duration" => options with { Duration = Seconds() },
                "--warmup" => options with { Warmup = Seconds() },
                "--requests" => options with { Requests = Math.Max(1, Int()) },
                "--concurrency" => options with { Concurrency = Math.Max(1, Int()) },
                "--generator" => Value() switch
                {
                    "socket" => options with { Socket = true, Ab = false },
                    "ab" => options with { Socket = false, Ab = true },
                    "both" => options with { Socket = true, Ab = true },
                    var other => throw new BenchException($"--generator {other}: socket, ab or both"),
                },
                "--part" => Value() switch
                {
                    "all" => options with { Load = true, Rss = true },
                    "load" => options with { Load = true, Rss = false },
                    "rss" => options with { Load = false, Rss = true },
                    var other => throw new BenchException($"--part {other}: all, load or rss"),
                },
                "--skip-agent" => options with { SkipAgent = true },
                "--idle-pods" => options with { IdlePods = Int() },
                "--settle" => options with { Settle = Seconds() },
                "--ready-timeout" => options with { ReadyTimeout = Seconds() },
                "--agent" => options with { Agent = Value() },
                "--target-cpus" => options with { TargetCpus = Value() },
                "--load-cpus" => options with { LoadCpus = Value() },
                "--no-pin" => options with { TargetCpus = null, LoadCpus = null },
                "--json" => options with { Json = Value() },
                "--keep" => options with { Keep = true },
                "--help" or "-h" => throw new BenchException(Usage),
                var other => throw new BenchException($"unknown option {other}\n{Usage}"),
            };
        }

        if (options.Duration <= TimeSpan.Zero)
        {
            throw new BenchException("--duration must be more than 0 seconds");
        }

        return options;
    }

    /// <summary>The repository root: the first directory above the binary that holds Krustlet.sln.</summary>
    public static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Krustlet.sln")))
            {
                return directory.FullName;
            }
        }

        return Environment.CurrentDirectory;
    }
}
