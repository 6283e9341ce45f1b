using Krustlet.Stages.Compile;

namespace Krustlet.Stages.Run;

/// <summary>A host directory the guest sees at <paramref name="GuestPath"/>; read-only unless <paramref name="ReadOnly"/> is false.</summary>
public sealed record Mount(string HostPath, string GuestPath, bool ReadOnly);

/// <summary>Everything needed to run one container once, already resolved.</summary>
/// <param name="Name">The container's name.</param>
/// <param name="Artifact">The compiled module or component.</param>
/// <param name="Argv">The argument vector, argv[0] included.</param>
/// <param name="Env">The environment, in order (a later duplicate wins, as in Kubernetes).</param>
/// <param name="Mounts">Preopened directories.</param>
/// <param name="MemoryLimitBytes">The linear-memory cap (resources.limits.memory); growth beyond it fails.</param>
/// <param name="LogPath">The log file of this run.</param>
/// <param name="LogRotation">When the log rotates.</param>
public sealed record ContainerLaunch(
    string Name,
    CompiledArtifact Artifact,
    IReadOnlyList<string> Argv,
    IReadOnlyList<KeyValuePair<string, string>> Env,
    IReadOnlyList<Mount> Mounts,
    long? MemoryLimitBytes,
    string LogPath,
    LogRotationOptions LogRotation);

/// <summary>
/// Lets the agent stop a running container: the guest is interrupted at its next epoch tick (about
/// <see cref="Compile.WasmEngineOptions.EpochTick"/>), even in a loop that never calls the host.
/// </summary>
public sealed class ContainerControl(TimeProvider time, DateTimeOffset? deadline = null)
{
    private volatile string? _killReason;

    /// <summary>When the container must stop (activeDeadlineSeconds); null for none.</summary>
    public DateTimeOffset? Deadline { get; } = deadline;

    public string? KillReason => _killReason;

    /// <summary>Asks the container to stop now; the first reason given is kept.</summary>
    public void Kill(string reason) => Interlocked.CompareExchange(ref _killReason, reason, null);

    /// <summary>True when the container must stop; says why.</summary>
    internal bool ShouldStop(out string reason)
    {
        if (_killReason is { } killed)
        {
            reason = killed;
            return true;
        }

        if (Deadline is { } deadline && time.GetUtcNow() >= deadline)
        {
            Kill("DeadlineExceeded: the pod's activeDeadlineSeconds passed");
            reason = _killReason!;
            return true;
        }

        reason = string.Empty;
        return false;
    }
}
