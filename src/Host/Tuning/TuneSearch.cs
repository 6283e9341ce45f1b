using System.Globalization;
using Krustlet.Pipeline.Configuration;

namespace Krustlet.Host.Tuning;

/// <summary>A setting to try next: the stage settings and how they differ from the best so far.</summary>
internal sealed record TuneCandidate(PipelineOptions Options, string Stage, string Change);

/// <summary>
/// <c>krustlet tune</c>'s search: coordinate descent from the starting settings. Each step widens one
/// stage of the best trial so far, the stages taken in the order that trial's figures name them (the
/// bottleneck first: the share of samples it was the bottleneck in, then how busy its slots were): its
/// parallelism doubled (its capacity raised to hold that many), or, when it filled its capacity, its
/// capacity doubled. A step is kept when it lowers event → Running p99 by at least
/// <see cref="Threshold"/> (5%, or the difference between two runs of the starting settings when that is
/// larger), and the search goes on from it; otherwise the next stage is tried. It
/// ends when no stage of the best trial has a step left untried, or on the trial or time budget.
/// </summary>
internal static class TuneSearch
{
    /// <summary>The least p99 improvement a trial must show to be kept (smaller is measurement noise).</summary>
    public const double Improvement = 0.05;

    /// <summary>The widest a stage is made (the settings' own maximum is 10,000).</summary>
    public const int MaxParallelism = 1024;

    public const int MaxCapacity = 1_000_000;

    /// <summary>The next untried step from <paramref name="best"/>, or null when every stage's has been tried.</summary>
    /// <param name="best">The best trial so far.</param>
    /// <param name="tried">The keys (<see cref="Key"/>) of every setting tried.</param>
    /// <param name="pods">The pods in the stream: a stage is never made wider than that.</param>
    public static TuneCandidate? Next(TrialResult best, IReadOnlySet<string> tried, int pods)
    {
        ArgumentNullException.ThrowIfNull(best);
        ArgumentNullException.ThrowIfNull(tried);
        var widest = Math.Clamp(pods, 1, MaxParallelism);
        foreach (var stage in best.Stages.OrderByDescending(s => s.BottleneckShare).ThenByDescending(s => s.Busy).ThenByDescending(s => s.MeanQueue))
        {
            var current = stage.Options;
            if (current.Parallelism < widest)
            {
                var parallelism = Math.Min(current.Parallelism * 2, widest);
                var to = new StageOptions(parallelism, Math.Max(current.Capacity, parallelism));
                var candidate = With(best.Options, stage.Name, to);
                if (!tried.Contains(Key(candidate)))
                {
                    var capacity = to.Capacity == current.Capacity ? string.Empty : string.Create(CultureInfo.InvariantCulture, $", Capacity {current.Capacity}→{to.Capacity}");
                    return new TuneCandidate(candidate, stage.Name, string.Create(CultureInfo.InvariantCulture, $"{stage.Name} Parallelism {current.Parallelism}→{to.Parallelism}{capacity}"));
                }
            }

            if (stage.Filled && current.Capacity < MaxCapacity)
            {
                var to = current with { Capacity = Math.Min(current.Capacity * 2, MaxCapacity) };
                var candidate = With(best.Options, stage.Name, to);
                if (!tried.Contains(Key(candidate)))
                {
                    return new TuneCandidate(candidate, stage.Name, string.Create(CultureInfo.InvariantCulture, $"{stage.Name} Capacity {current.Capacity}→{to.Capacity}"));
                }
            }
        }

        return null;
    }

    /// <summary>
    /// The improvement a trial must show: <see cref="Improvement"/>, or more when the starting settings
    /// run twice (<paramref name="first"/>, <paramref name="again"/>) differed by more than that.
    /// </summary>
    public static double Threshold(TrialResult first, TrialResult? again)
    {
        ArgumentNullException.ThrowIfNull(first);
        if (again is not { RunningP99: { } b } || first.RunningP99 is not { } a || Math.Min(a, b) <= 0)
        {
            return Improvement;
        }

        return Math.Max(Improvement, Math.Abs(a - b) / Math.Max(a, b));
    }

    /// <summary>Whether <paramref name="trial"/> beats <paramref name="best"/>: it finished with more pods running, or as many and a p99 at least <paramref name="threshold"/> lower.</summary>
    public static bool Better(TrialResult trial, TrialResult best, double threshold = Improvement)
    {
        ArgumentNullException.ThrowIfNull(trial);
        ArgumentNullException.ThrowIfNull(best);
        if (!trial.Usable)
        {
            return false;
        }

        if (!best.Usable || trial.RunningMilliseconds.Count > best.RunningMilliseconds.Count)
        {
            return true;
        }

        return trial.RunningMilliseconds.Count == best.RunningMilliseconds.Count && trial.RunningP99 < best.RunningP99 * (1 - threshold);
    }

    /// <summary>A setting's identity: every stage's parallelism and capacity.</summary>
    public static string Key(PipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return string.Join(';', options.Stages.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Key}={s.Value.Parallelism}/{s.Value.Capacity}")));
    }

    /// <summary>The options with one stage's replaced (the shutdown settings kept).</summary>
    public static PipelineOptions With(PipelineOptions options, string stage, StageOptions replacement)
    {
        ArgumentNullException.ThrowIfNull(options);
        var stages = new Dictionary<string, StageOptions>(options.Stages, StringComparer.Ordinal) { [stage] = replacement };
        return new PipelineOptions(stages) { ShutdownTimeout = options.ShutdownTimeout, CancellationGrace = options.CancellationGrace };
    }
}
