using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Krustlet.Host.Configuration;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Replay;
using Krustlet.Stages;
using Krustlet.Stages.ImagePull;

namespace Krustlet.Host.Tuning;

/// <summary>What <c>krustlet tune</c> was asked to do.</summary>
/// <param name="Stream">A recorded stream, or null for a burst.</param>
/// <param name="Pace">How a recorded stream is replayed.</param>
/// <param name="BurstPods">The pods of a generated burst.</param>
/// <param name="BurstImage">The burst's image (in the store).</param>
/// <param name="Layouts">OCI layouts imported into the store first.</param>
/// <param name="Budget">The time the whole search may take.</param>
/// <param name="TrialTimeout">The time one trial may take.</param>
/// <param name="MaxTrials">The most trials run, the first included.</param>
/// <param name="Snippet">Where the recommended settings are written.</param>
/// <param name="Chart">Where the latency chart is written.</param>
internal sealed record TuneRequest(string? Stream, ReplayPace Pace, int? BurstPods, string? BurstImage, IReadOnlyList<string> Layouts, TimeSpan Budget, TimeSpan TrialTimeout, int MaxTrials, string Snippet, string Chart)
{
    /// <summary>After the search, the starting and the best settings are run alternately this many times each; the best is recommended only if it is still better.</summary>
    public int Confirm { get; init; } = 3;
}

/// <summary>
/// <c>krustlet tune</c>: replays a recorded stream or a generated burst through the real pipeline under a
/// search over each stage's Parallelism and Capacity (<see cref="TuneSearch"/>), one trial per setting
/// (<see cref="TuneTrial"/>), prints what each measured, names the best setting and why, writes it as a
/// settings-file snippet and draws the event → Running distributions as an SVG chart.
/// </summary>
internal static class TuneCommand
{
    /// <summary>The exit code for input tune cannot use.</summary>
    public const int BadInputExitCode = 2;

    public static Command Build(TextWriter output, TextWriter error)
    {
        var flags = new SettingsFlags();
        var stream = new Argument<FileInfo?>("stream") { Description = "A recorded stream (.ndjson, as `krustlet record` writes); or give --burst and --image.", Arity = ArgumentArity.ZeroOrOne };
        var pace = new Option<ReplayPace>("--pace") { Description = "A recorded stream's pace: AsFastAsPossible (every pod created at once), or Recorded (each event at its offsetSeconds; a pod's latency counts from then).", DefaultValueFactory = _ => ReplayPace.AsFastAsPossible };
        var burst = new Option<int?>("--burst") { Description = "Instead of a stream: this many pods of --image, created at once." };
        var image = new Option<string?>("--image") { Description = "The burst's image; it must be in the image store (see --images)." };
        var images = new Option<string[]>("--images") { Description = "OCI image layout directories to import into the image store first; repeatable." };
        var budget = new Option<string>("--budget") { Description = "How long the whole search may take, e.g. 90s, 10m (a trial is not started unless the longest one so far fits in what is left).", DefaultValueFactory = _ => "10m" };
        var trialTimeout = new Option<string>("--trial-timeout") { Description = "How long one trial may take before it is cut short and not counted.", DefaultValueFactory = _ => "2m" };
        var maxTrials = new Option<int>("--max-trials") { Description = "The most settings tried, the starting ones included.", DefaultValueFactory = _ => 16 };
        var confirm = new Option<int>("--confirm") { Description = "After the search, run the starting and the best settings alternately this many times each, side by side; the best is recommended only if its median p99 is still better (0: no confirmation).", DefaultValueFactory = _ => 3 };
        var snippet = new Option<FileInfo>("--snippet") { Description = "Where to write the recommended settings, a JSON settings-file snippet (--config reads it).", DefaultValueFactory = _ => new FileInfo("krustlet-tune.json") };
        var chart = new Option<FileInfo>("--chart") { Description = "Where to write the chart of each setting's event → Running times (SVG).", DefaultValueFactory = _ => new FileInfo("krustlet-tune.svg") };
        var command = new Command("tune", "Replay a recorded stream or a burst through the real pipeline under a search over each stage's Parallelism and Capacity; print each setting's figures and write the best as a settings snippet and a latency chart.")
        {
            stream, pace, burst, image, images, budget, trialTimeout, maxTrials, confirm, snippet, chart,
        };
        flags.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            if (await flags.ReadOrReportAsync(parse, error) is not { } settings)
            {
                return SettingsFlags.InvalidSettingsExitCode;
            }

            if (!TryDuration(parse.GetValue(budget)!, out var budgetValue) || !TryDuration(parse.GetValue(trialTimeout)!, out var trialValue))
            {
                await error.WriteLineAsync("error: --budget and --trial-timeout take durations such as 90s, 10m or 00:10:00.");
                return BadInputExitCode;
            }

            var request = new TuneRequest(parse.GetValue(stream)?.FullName, parse.GetValue(pace), parse.GetValue(burst), parse.GetValue(image), parse.GetValue(images) ?? [], budgetValue, trialValue, parse.GetValue(maxTrials), parse.GetValue(snippet)!.FullName, parse.GetValue(chart)!.FullName) { Confirm = parse.GetValue(confirm) };
            return await RunAsync(settings, request, output, error, wrapStages: null, ct);
        });
        return command;
    }

    /// <summary>Tunes; 0 when a recommendation was written, <see cref="BadInputExitCode"/> for input it cannot use (one message on <paramref name="error"/>).</summary>
    /// <param name="settings">The starting settings (the agent's, from the usual sources).</param>
    /// <param name="request">What to tune with.</param>
    /// <param name="output">The report.</param>
    /// <param name="error">Progress and errors.</param>
    /// <param name="wrapStages">Wraps each trial's stages (<see cref="Agent.AgentRuntime.Start"/>); tests make one stage expensive with it.</param>
    /// <param name="cancellationToken">Stops the search.</param>
    public static async Task<int> RunAsync(AgentSettings settings, TuneRequest request, TextWriter output, TextWriter error, Func<PodStages, PodStages>? wrapStages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var scratch = Directory.CreateTempSubdirectory("krustlet-tune-input-").FullName;
        var trials = TrialRoot() ?? scratch;
        try
        {
            TuneStream stream;
            try
            {
                (settings, stream) = await PrepareAsync(settings, request, scratch, cancellationToken);
            }
            catch (Exception ex) when (ex is TuneInputException or OciLayoutException)
            {
                await error.WriteLineAsync($"error: {ex.Message}");
                return BadInputExitCode;
            }

            return await SearchAsync(settings, request, stream, output, error, wrapStages, trials, cancellationToken);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
            if (trials != scratch)
            {
                Directory.Delete(trials, recursive: true);
            }
        }
    }

    /// <summary>
    /// Where the trials' pod, log and state directories go: a tmpfs (<c>/dev/shm</c>) when there is one.
    /// On a disk filesystem, ext4 makes every <c>mkdir</c> walk past the inodes freed in the last minutes
    /// (<c>recently_deleted</c>), so the thousands of directories one trial, or one earlier run, deleted
    /// slowed the next by up to twice its CPU whatever its settings; a tmpfs has no such memory.
    /// </summary>
    private static string? TrialRoot()
    {
        try
        {
            return OperatingSystem.IsLinux() && Directory.Exists(TuneTrial.Tmpfs)
                ? Directory.CreateDirectory(Path.Combine(TuneTrial.Tmpfs, $"krustlet-tune-{Guid.NewGuid():N}"[..26])).FullName
                : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static async Task<(AgentSettings Settings, TuneStream Stream)> PrepareAsync(AgentSettings settings, TuneRequest request, string scratch, CancellationToken cancellationToken)
    {
        if ((request.Stream is null) == (request.BurstPods is null) || (request.BurstPods is not null && request.BurstImage is null) || (request.BurstPods is null && request.BurstImage is not null))
        {
            throw new TuneInputException("give a recorded stream, or --burst N with --image REFERENCE, not both.");
        }

        if (request.Budget <= TimeSpan.Zero || request.TrialTimeout <= TimeSpan.Zero)
        {
            throw new TuneInputException("--budget and --trial-timeout must be longer than zero.");
        }

        if (request.MaxTrials < 1 || request.Confirm < 0)
        {
            throw new TuneInputException("--max-trials must be at least 1 and --confirm at least 0.");
        }

        if (request.Stream is not null && !File.Exists(request.Stream))
        {
            throw new TuneInputException($"the stream {request.Stream} does not exist.");
        }

        var store = new ContentStore(settings.ImagesDirectory);
        foreach (var layout in request.Layouts)
        {
            await new OciLayoutImporter(store, settings.Registries).ImportAsync(layout, cancellationToken);
        }

        if (request.Stream is { } path)
        {
            // Unless a node name was set, the pods are admitted as on the node they were recorded on (as replay does).
            if (string.Equals(settings.NodeName, Environment.MachineName, StringComparison.OrdinalIgnoreCase) && ReplayCommand.RecordedNode(path) is { } recorded)
            {
                settings = settings with { NodeName = recorded };
            }

            return (settings, await TuneStream.FromRecordingAsync(path, request.Pace, store, scratch, cancellationToken));
        }

        var count = request.BurstPods!.Value;
        if (count > settings.MaxPods)
        {
            // Admission would refuse the pods past Node:MaxPods, and a trial would tune for refusals.
            settings = settings with { MaxPods = count, Wasm = settings.Wasm with { PoolSlots = Math.Max(settings.Wasm.PoolSlots, count) } };
        }

        return (settings, await TuneStream.BurstAsync(count, request.BurstImage!, settings.NodeName, store, scratch));
    }

    /// <summary>The most uncounted passes of the whole stream before the first trial.</summary>
    public const int MaxSettlingPasses = 30;

    /// <summary>A settling pass during which the JIT compiled fewer methods than this means the process has settled.</summary>
    public const int SettledJitMethods = 25;

    private static async Task<int> SearchAsync(AgentSettings settings, TuneRequest request, TuneStream stream, TextWriter output, TextWriter error, Func<PodStages, PodStages>? wrapStages, string scratch, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var trials = new List<TrialResult>();
        var tried = new HashSet<string>(StringComparer.Ordinal);
        var longest = TimeSpan.Zero;
        await output.WriteLineAsync($"tuning with {stream.Description}");
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"budget {Format(request.Budget)}, at most {request.MaxTrials} trials of at most {Format(request.TrialTimeout)} each; a setting is kept when it lowers event → Running p99 by {TuneSearch.Improvement:P0} or more, or by more than two trials of the starting settings differ"));
        // A short replay first, not counted: the process's one-time costs (JIT, Wasmtime's first
        // instance) would otherwise all fall on the first trial and flatter every later one.
        var warmUpPods = stream.Pods.Take(TuneStream.WarmUpPods).ToList();
        var warmUpDeadline = request.Budget < request.TrialTimeout ? request.Budget : request.TrialTimeout;
        await error.WriteLineAsync($"tune: warming up with {warmUpPods.Count} pods ...");
        var warmUp = await TuneTrial.RunAsync(settings, settings.Pipeline, "warm-up", stream with { Path = stream.WarmUpPath, Pace = ReplayPace.AsFastAsPossible, Pods = warmUpPods }, warmUpDeadline, wrapStages, _ => { }, scratch, cancellationToken);
        if (!warmUp.Finished)
        {
            await error.WriteLineAsync(TooShort(request, warmUpDeadline));
            return BadInputExitCode;
        }

        // Then the whole stream, not counted either, until the process has settled: under a full trial's
        // load the JIT keeps recompiling hot paths (tiered compilation: quick code first, optimized code
        // once a method is hot, instrumented in between) for 15-25 s, and first trials measured twice the
        // CPU of the same settings later in the run. Settled: a pass during which the JIT compiled fewer
        // than SettledJitMethods methods, or MaxSettlingPasses.
        for (var pass = 1; pass <= MaxSettlingPasses; pass++)
        {
            var settleDeadline = request.Budget - clock.Elapsed < request.TrialTimeout ? request.Budget - clock.Elapsed : request.TrialTimeout;
            if (settleDeadline <= TimeSpan.Zero)
            {
                break;
            }

            var compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
            await error.WriteLineAsync($"tune: settling, pass {pass}: the whole stream, not counted ...");
            await TuneTrial.RunAsync(settings, settings.Pipeline, "settling", stream with { Pace = ReplayPace.AsFastAsPossible }, settleDeadline, wrapStages, _ => { }, scratch, cancellationToken);
            if (System.Runtime.JitInfo.GetCompiledMethodCount() - compiled < SettledJitMethods)
            {
                break;
            }
        }

        TrialResult? best = null;
        var candidate = new TuneCandidate(settings.Pipeline, string.Empty, "the starting settings");
        var stopped = "no stage of the best setting has a widening left to try";
        var threshold = TuneSearch.Improvement;
        var noiseCheck = false;
        while (true)
        {
            // What the confirmation rounds will need is kept back from the search.
            var left = request.Budget - clock.Elapsed - (best is null ? TimeSpan.Zero : longest * (2 * request.Confirm));
            if (best is not null && left < longest * 1.2)
            {
                stopped = string.Create(CultureInfo.InvariantCulture, $"the budget left ({Format(left)}) would not fit another trial (the longest took {Format(longest)})");
                break;
            }

            var deadline = left < request.TrialTimeout ? left : request.TrialTimeout;
            var number = trials.Count + 1;
            await error.WriteLineAsync($"tune: trial {number}: {candidate.Change} ...");
            var started = clock.Elapsed;
            var trial = await TuneTrial.RunAsync(settings, candidate.Options, candidate.Change, stream, deadline, wrapStages, p => error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"tune:   {p.Elapsed.TotalSeconds,5:0.0}s  {p.Running}/{p.Pods} running, {p.Completed} done{(p.Bottleneck is null ? string.Empty : $", waiting mostly on {p.Bottleneck}")}")), scratch, cancellationToken) with { IsNoiseCheck = noiseCheck };
            longest = longest > clock.Elapsed - started ? longest : clock.Elapsed - started;
            tried.Add(TuneSearch.Key(candidate.Options));
            trials.Add(trial);
            await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"tune: trial {number}: {(trial.Finished ? "done" : "cut short")} in {trial.Wall.TotalSeconds:0.00}s, Running p99 {Ms(trial.RunningP99)}, bottleneck {trial.Bottleneck.Name}"));
            if (best is null)
            {
                if (!trial.Finished)
                {
                    await error.WriteLineAsync(TooShort(request, deadline));
                    return BadInputExitCode;
                }

                best = trial;
            }
            else if (!trial.IsNoiseCheck && TuneSearch.Better(trial, best, threshold))
            {
                best = trial;
            }

            if (trial.IsNoiseCheck)
            {
                threshold = TuneSearch.Threshold(trials[0], trial);
                await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"tune: the starting settings ran twice: p99 {Ms(trials[0].RunningP99)} and {Ms(trial.RunningP99)} ms; a setting is kept when it is {threshold:P0} better"));
            }

            if (trials.Count >= request.MaxTrials)
            {
                stopped = string.Create(CultureInfo.InvariantCulture, $"--max-trials {request.MaxTrials} reached");
                break;
            }

            if (trials.Count == 1)
            {
                // Once more, to see how much one setting varies from trial to trial on this machine.
                candidate = candidate with { Change = "the starting settings, again" };
                noiseCheck = true;
                continue;
            }

            noiseCheck = false;
            if (TuneSearch.Next(best, tried, stream.Pods.Count) is not { } next)
            {
                break;
            }

            candidate = next;
        }

        await ReportAsync(output, trials, best!, stopped, threshold);
        var recommended = best!.Options;
        var confirmation = new List<TrialResult>();
        if (!ReferenceEquals(best, trials[0]) && request.Confirm > 0)
        {
            // Side by side in one window of time: whatever else the machine does falls on both alike.
            for (var round = 1; round <= request.Confirm && request.Budget - clock.Elapsed >= longest * 2; round++)
            {
                foreach (var (options, name) in new[] { (trials[0].Options, "the starting settings"), (best.Options, "the recommended settings") })
                {
                    var change = string.Create(CultureInfo.InvariantCulture, $"{name} (confirming, {round} of {request.Confirm})");
                    await error.WriteLineAsync($"tune: {change} ...");
                    var remaining = request.Budget - clock.Elapsed;
                    confirmation.Add(await TuneTrial.RunAsync(settings, options, change, stream, remaining < request.TrialTimeout ? remaining : request.TrialTimeout, wrapStages, _ => { }, scratch, cancellationToken));
                }
            }

            if (!await ConfirmAsync(output, confirmation, trials[0].Options, threshold))
            {
                recommended = trials[0].Options;
            }
        }

        await output.WriteLineAsync();
        await output.WriteLineAsync($"recommended: {Describe(recommended, trials[0].Options)}");
        await WriteSnippetAsync(request.Snippet, trials[0].Options, recommended);
        await File.WriteAllTextAsync(request.Chart, LatencyChart.Cdf(Series(trials, best, confirmation), $"krustlet tune: event → Running per setting ({stream.Pods.Count} pods)"), cancellationToken);
        await output.WriteLineAsync($"wrote the recommended settings to {request.Snippet} (use it with --config, or merge it into your settings file)");
        await output.WriteLineAsync($"wrote the event → Running chart to {request.Chart}");
        return 0;
    }

    /// <summary>Prints the confirmation rounds and whether the best setting is still better; false when it is not (the starting settings are then recommended).</summary>
    private static async Task<bool> ConfirmAsync(TextWriter output, List<TrialResult> rounds, PipelineOptions start, double threshold)
    {
        var starting = rounds.Where(r => ReferenceEquals(r.Options, start)).ToList();
        var best = rounds.Where(r => !ReferenceEquals(r.Options, start)).ToList();
        await output.WriteLineAsync();
        if (starting.Count == 0 || best.Count == 0 || !starting.Concat(best).All(r => r.Usable))
        {
            await output.WriteLineAsync("confirmation: not enough budget left (or a round was cut short); the best setting is recommended on the search's trials alone.");
            return true;
        }

        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"confirmation: the starting and the recommended settings, alternately, {best.Count} times each:"));
        await output.WriteLineAsync($"  {"settings",-26}  {"p50 ms",9}  {"p99 ms",9}  {"done/s",8}  {"peak RSS",9}  {"CPU s",7}");
        foreach (var (name, runs) in new[] { ("starting (median)", starting), ("recommended (median)", best) })
        {
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {name,-26}  {Ms(Median(runs, r => r.RunningP50)),9}  {Ms(Median(runs, r => r.RunningP99)),9}  {Median(runs, r => r.CompletionsPerSecond) ?? 0,8:0.0}  {Median(runs, r => r.PeakRssBytes) / 1048576.0,5:0} MiB  {Median(runs, r => r.Cpu.TotalSeconds),7:0.00}"));
        }

        var before = Median(starting, r => r.RunningP99)!.Value;
        var after = Median(best, r => r.RunningP99)!.Value;
        var confirmed = after < before * (1 - threshold);
        await output.WriteLineAsync(confirmed
            ? string.Create(CultureInfo.InvariantCulture, $"confirmed: the recommended settings' median Running p99 is {Ms(after)} ms against {Ms(before)} ms ({(after - before) / before:+0%;-0%}).")
            : string.Create(CultureInfo.InvariantCulture, $"not confirmed: side by side the recommended settings' median Running p99 is {Ms(after)} ms against {Ms(before)} ms, not {threshold:P0} better; the starting settings are kept."));
        return confirmed;
    }

    private static double? Median(List<TrialResult> runs, Func<TrialResult, double?> figure)
    {
        var values = runs.Select(figure).OfType<double>().Order().ToList();
        return values.Count == 0 ? null : values.Count % 2 == 1 ? values[values.Count / 2] : (values[(values.Count / 2) - 1] + values[values.Count / 2]) / 2;
    }

    /// <summary>Why the search cannot even measure the starting settings: the budget or the trial timeout ran out first.</summary>
    private static string TooShort(TuneRequest request, TimeSpan deadline) =>
        deadline < request.TrialTimeout
            ? $"error: --budget {Format(request.Budget)} is too small for one trial: the trial of the starting settings had not finished when it ran out."
            : $"error: the trial of the starting settings had not finished after --trial-timeout {Format(request.TrialTimeout)}; give a longer one.";

    private static async Task ReportAsync(TextWriter output, List<TrialResult> trials, TrialResult best, string stopped, double threshold)
    {
        await output.WriteLineAsync();
        var width = Math.Max(20, trials.Max(t => t.Change.Length));
        await output.WriteLineAsync($"{"trial",5}  {"setting".PadRight(width)}  {"finished",8}  {"running",9}  {"p50 ms",9}  {"p99 ms",9}  {"done/s",8}  {"peak RSS",9}  {"CPU s",7}  {"cores",5}  bottleneck");
        for (var i = 0; i < trials.Count; i++)
        {
            var t = trials[i];
            var mark = ReferenceEquals(t, best) ? "*" : " ";
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{i + 1,4}{mark}  {t.Change.PadRight(width)}  {(t.Finished ? "yes" : "cut"),8}  {$"{t.RunningMilliseconds.Count}/{t.Pods}",9}  {Ms(t.RunningP50),9}  {Ms(t.RunningP99),9}  {(t.CompletionsPerSecond is { } c ? c.ToString("0.0", CultureInfo.InvariantCulture) : "-"),8}  {t.PeakRssBytes / 1048576.0,5:0} MiB  {t.Cpu.TotalSeconds,7:0.00}  {t.Cpu.TotalSeconds / Math.Max(t.Wall.TotalSeconds, 1e-3),5:0.00}  {t.Bottleneck.Name} ({t.Bottleneck.BottleneckShare:P0})"));
        }

        await output.WriteLineAsync("(running: pods that got every container started; p50/p99: event → Running; done/s: pods that ran to completion per second; cores: CPU s per second of the trial)");
        await PrintStagesAsync(output, "the starting settings", trials[0]);
        if (!ReferenceEquals(best, trials[0]))
        {
            await PrintStagesAsync(output, "the best setting", best);
        }

        await output.WriteLineAsync();
        await output.WriteLineAsync($"search ended: {stopped}.");
        await output.WriteLineAsync($"best: trial {IndexOf(trials, best) + 1} ({Describe(best.Options, trials[0].Options)})");
        foreach (var line in Explain(trials, best, threshold))
        {
            await output.WriteLineAsync($"  {line}");
        }
    }

    private static async Task PrintStagesAsync(TextWriter output, string title, TrialResult trial)
    {
        await output.WriteLineAsync();
        await output.WriteLineAsync($"stages with {title}:");
        await output.WriteLineAsync("  stage         parallelism  capacity   busy  mean queue  peak held  bottleneck   p50 ms    p99 ms");
        foreach (var s in trial.Stages)
        {
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {s.Name,-12} {s.Options.Parallelism,12} {s.Options.Capacity,9} {s.Busy,6:P0} {s.MeanQueue,11:0.0} {s.PeakHeld,10} {s.BottleneckShare,11:P0} {Ms(s.P50Milliseconds),8} {Ms(s.P99Milliseconds),9}"));
        }
    }

    /// <summary>Why the best setting is the best: the bottleneck, what widening it did, and what widening the others did not.</summary>
    internal static IReadOnlyList<string> Explain(IReadOnlyList<TrialResult> trials, TrialResult best, double threshold)
    {
        ArgumentNullException.ThrowIfNull(trials);
        ArgumentNullException.ThrowIfNull(best);
        var lines = new List<string>();
        var start = trials[0];
        var neck = start.Bottleneck;
        lines.Add(string.Create(CultureInfo.InvariantCulture, $"The bottleneck was {neck.Name}: with the starting settings it held pods back in {neck.BottleneckShare:P0} of the samples, its {neck.Options.Parallelism} slots {neck.Busy:P0} busy with {neck.MeanQueue:0.0} pods waiting for one on average (the other stages: {string.Join(", ", start.Stages.Where(s => s.Name != neck.Name).Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Name} {s.Busy:P0} busy, {s.MeanQueue:0.0} waiting")))})."));

        // Replay the search: each trial was derived from the best before it.
        var current = start;
        var rejected = new List<(TrialResult Trial, TrialResult From)>();
        if (trials.FirstOrDefault(t => t.IsNoiseCheck) is { } again)
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"The starting settings ran twice: Running p99 {Ms(start.RunningP99)} and {Ms(again.RunningP99)} ms, so a setting had to be {threshold:P0} better to count."));
        }

        foreach (var trial in trials.Skip(1).Where(t => !t.IsNoiseCheck))
        {
            if (TuneSearch.Better(trial, current, threshold))
            {
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"Kept {trial.Change}: Running p99 {Ms(current.RunningP99)} → {Ms(trial.RunningP99)} ms ({Change(trial, current)}), p50 {Ms(current.RunningP50)} → {Ms(trial.RunningP50)} ms."));
                current = trial;
            }
            else
            {
                rejected.Add((trial, current));
            }
        }

        foreach (var (trial, from) in rejected)
        {
            if (trial.Options.Stages.FirstOrDefault(s => from.Options.For(s.Key) != s.Value).Key is not { } stage)
            {
                continue;
            }

            var before = from.Stages.First(s => s.Name == stage);
            var why = !trial.Finished
                ? "the trial was cut short"
                : stage == from.Bottleneck.Name
                    ? trial.Bottleneck.Name == stage
                        ? string.Create(CultureInfo.InvariantCulture, $"more {stage} slots did not make its work go faster (pods still waited in {stage}: on the work itself, not for a slot)")
                        : string.Create(CultureInfo.InvariantCulture, $"{stage} was wide enough: pods then waited on {trial.Bottleneck.Name} instead")
                    : string.Create(CultureInfo.InvariantCulture, $"{stage} was not where pods waited ({before.Busy:P0} busy, {before.MeanQueue:0.0} waiting on average; {from.Bottleneck.Name} was the bottleneck)");
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"Not kept: {trial.Change} changed Running p99 {Ms(from.RunningP99)} → {Ms(trial.RunningP99)} ms ({Change(trial, from)}), not {threshold:P0} better: {why}."));
        }

        if (ReferenceEquals(best, start))
        {
            lines.Add($"The starting settings are the best found: no widening lowered Running p99 by {threshold.ToString("P0", CultureInfo.InvariantCulture)} or more.");
        }

        return lines;
    }

    /// <summary>The recommended settings as a settings file reads them: the stages that differ from the defaults or from the starting settings.</summary>
    private static async Task WriteSnippetAsync(string path, PipelineOptions start, PipelineOptions best)
    {
        var stages = new JsonObject();
        foreach (var (name, options) in best.Stages.OrderBy(s => StageNames.GraphStages.Contains(s.Key) ? StageNames.GraphStages.ToList().IndexOf(s.Key) : int.MaxValue))
        {
            if (options != StageNames.Defaults[name] || options != start.For(name))
            {
                stages[name] = new JsonObject { [StageOptions.ParallelismKey] = options.Parallelism, [StageOptions.CapacityKey] = options.Capacity };
            }
        }

        var snippet = new JsonObject { [PipelineOptions.SectionName] = new JsonObject { ["Stages"] = stages } };
        await File.WriteAllTextAsync(path, snippet.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>
    /// The chart's lines: the confirmation rounds pooled (starting and recommended side by side), then the
    /// search's trials, the starting and best first; at most <see cref="ChartLines"/>.
    /// </summary>
    private static Dictionary<string, IReadOnlyList<double>> Series(List<TrialResult> trials, TrialResult best, List<TrialResult> confirmation)
    {
        var series = new Dictionary<string, IReadOnlyList<double>>(StringComparer.Ordinal);
        foreach (var side in confirmation.GroupBy(r => ReferenceEquals(r.Options, trials[0].Options)))
        {
            var pooled = side.SelectMany(r => r.RunningMilliseconds).ToList();
            if (pooled.Count > 0)
            {
                series[$"{(side.Key ? "starting" : "recommended")} settings, confirmation rounds pooled"] = pooled;
            }
        }

        var order = Enumerable.Range(0, trials.Count).OrderBy(i => i == 0 ? 0 : ReferenceEquals(trials[i], best) ? 1 : 2).ThenBy(i => i);
        foreach (var i in order.Where(i => trials[i].RunningMilliseconds.Count > 0))
        {
            if (series.Count == ChartLines)
            {
                break;
            }

            var mark = ReferenceEquals(trials[i], best) ? ", best of the search" : string.Empty;
            series[string.Create(CultureInfo.InvariantCulture, $"{i + 1}: {trials[i].Change}{mark}, p99 {Ms(trials[i].RunningP99)} ms")] = trials[i].RunningMilliseconds;
        }

        return series;
    }

    /// <summary>The most lines the chart draws (its palette has eight colours).</summary>
    private const int ChartLines = 8;

    private static string Describe(PipelineOptions options, PipelineOptions start)
    {
        var changed = options.Stages.Where(s => start.For(s.Key) != s.Value).Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Key} Parallelism {s.Value.Parallelism}, Capacity {s.Value.Capacity}")).ToList();
        return changed.Count == 0 ? "the starting settings" : string.Join("; ", changed);
    }

    private static int IndexOf(List<TrialResult> trials, TrialResult trial)
    {
        for (var i = 0; i < trials.Count; i++)
        {
            if (ReferenceEquals(trials[i], trial))
            {
                return i;
            }
        }

        return -1;
    }

    private static string Change(TrialResult trial, TrialResult from) =>
        trial.RunningP99 is { } now && from.RunningP99 is { } before && before > 0
            ? ((now - before) / before).ToString("+0%;-0%;0%", CultureInfo.InvariantCulture)
            : "n/a";

    private static string Ms(double? milliseconds) => milliseconds is { } ms ? ms.ToString("0.0", CultureInfo.InvariantCulture) : "-";

    private static bool TryDuration(string text, out TimeSpan duration) => AgentSettingsReader.TryParseDuration(text, out duration);

    /// <summary>A duration as the flags take it: 1m30s, 500ms.</summary>
    internal static string Format(TimeSpan duration)
    {
        if (duration < TimeSpan.FromSeconds(1))
        {
            return string.Create(CultureInfo.InvariantCulture, $"{Math.Max(0, duration.TotalMilliseconds):0}ms");
        }

        var text = new StringBuilder();
        if (duration.TotalHours >= 1)
        {
            text.Append(CultureInfo.InvariantCulture, $"{(int)duration.TotalHours}h");
        }

        if (duration.Minutes > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"{duration.Minutes}m");
        }

        if (duration.Seconds > 0 || text.Length == 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"{duration.Seconds}s");
        }

        return text.ToString();
    }
}
