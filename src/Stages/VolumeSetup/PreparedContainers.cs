using Krustlet.Stages.Run;

namespace Krustlet.Stages.VolumeSetup;

/// <summary>One container's resolved environment (in order) and mounts.</summary>
public sealed record PreparedContainer(IReadOnlyList<KeyValuePair<string, string>> Env, IReadOnlyList<Mount> Mounts);

/// <summary>
/// The volume setup stage's output, read by the run stage: every container's environment and
/// preopened directories, already resolved, by container name.
/// </summary>
public sealed record PreparedContainers(IReadOnlyDictionary<string, PreparedContainer> ByContainer);
