using Krustlet.Stages.Run;

namespace Krustlet.Stages.VolumeSetup;

/// <summary>One container's resolved environment (in order) and mounts.</summary>
public sealed record PreparedContainer(IReadOnlyList<KeyValuePair<string, string>> Env, IReadOnlyList<Mount> Mounts);

/// <summary>
/// The volume setup stage's output, read by the run stage: every container's environment and
/// preopened directories, already resolved, by container name.
/// </summary>
public sealed record PreparedContainers(IReadOnlyDictionary<string, PreparedContainer> ByContainer)
{
    /// <summary>
    /// Measures the pod's emptyDirs that have a sizeLimit now: the eviction message of the first over its
    /// limit, else null. The run stage asks when a container exits, before its end is reported, so a pod
    /// past its limit is never reported Succeeded.
    /// </summary>
    public Func<string?>? OverLimit { get; init; }
}
