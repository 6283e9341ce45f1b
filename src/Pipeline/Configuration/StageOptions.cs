namespace Krustlet.Pipeline.Configuration;

/// <summary>
/// How much one stage may do at once. Read from <c>Pipeline:Stages:&lt;Stage&gt;</c>; a block copies these
/// when it is built, so changing them later has no effect.
/// </summary>
/// <param name="Parallelism">How many keys the stage works on at once (Dataflow MaxDegreeOfParallelism).</param>
/// <param name="Capacity">How many work items the stage holds, waiting and in progress, before senders wait (Dataflow BoundedCapacity).</param>
public sealed record StageOptions(int Parallelism, int Capacity)
{
    public const string ParallelismKey = "Parallelism";
    public const string CapacityKey = "Capacity";
}

/// <summary>The engine's settings, read and validated by <see cref="PipelineOptionsReader"/>.</summary>
public sealed class PipelineOptions
{
    /// <summary>The configuration section that holds these settings.</summary>
    public const string SectionName = "Pipeline";

    /// <summary>The default time in-flight work gets to finish at shutdown before it is cancelled.</summary>
    public static readonly TimeSpan DefaultShutdownTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The default time cancelled work gets to unwind after the shutdown deadline.</summary>
    public static readonly TimeSpan DefaultCancellationGrace = TimeSpan.FromSeconds(5);

    public PipelineOptions(IReadOnlyDictionary<string, StageOptions> stages)
    {
        ArgumentNullException.ThrowIfNull(stages);
        Stages = stages;
    }

    /// <summary>Each stage's options by stage name.</summary>
    public IReadOnlyDictionary<string, StageOptions> Stages { get; }

    /// <summary><c>Pipeline:ShutdownTimeout</c>: how long in-flight work may run on at shutdown before it is cancelled.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = DefaultShutdownTimeout;

    /// <summary><c>Pipeline:CancellationGrace</c>: how long cancelled work may take to unwind before it is reported stuck.</summary>
    public TimeSpan CancellationGrace { get; init; } = DefaultCancellationGrace;

    public StageOptions For(string stage) =>
        Stages.TryGetValue(stage, out var options)
            ? options
            : throw new InvalidOperationException($"No options for stage '{stage}'.");
}
