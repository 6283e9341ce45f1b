using Krustlet.Pipeline.Configuration;

namespace Krustlet.Stages;

/// <summary>
/// The six stages of a pod's journey, in apply order, and their default concurrency. Each name is also
/// the stage's configuration section: <c>Pipeline:Stages:&lt;Name&gt;:Parallelism</c> and <c>:Capacity</c>.
/// </summary>
public static class StageNames
{
    public const string Admission = "Admission";
    public const string ImagePull = "ImagePull";
    public const string Compile = "Compile";
    public const string VolumeSetup = "VolumeSetup";
    public const string Run = "Run";
    public const string StatusReport = "StatusReport";

    /// <summary>The five graph stages in apply order (the status stage ends the graph).</summary>
    public static IReadOnlyList<string> GraphStages { get; } = [Admission, ImagePull, Compile, VolumeSetup, Run];

    /// <summary>
    /// Defaults chosen for a 2-core node: admission and volume setup are quick bookkeeping; image pulls
    /// wait on the network; compilation is CPU-bound, so no more than the cores; starting containers
    /// and writing statuses mostly wait. Capacity bounds what queues in front of each.
    /// </summary>
    public static IReadOnlyDictionary<string, StageOptions> Defaults { get; } = new Dictionary<string, StageOptions>(StringComparer.Ordinal)
    {
        [Admission] = new(Parallelism: 1, Capacity: 256),
        [ImagePull] = new(Parallelism: 4, Capacity: 256),
        [Compile] = new(Parallelism: Math.Max(1, Environment.ProcessorCount), Capacity: 128),
        [VolumeSetup] = new(Parallelism: 4, Capacity: 128),
        [Run] = new(Parallelism: 8, Capacity: 128),
        [StatusReport] = new(Parallelism: 4, Capacity: 512),
    };
}
