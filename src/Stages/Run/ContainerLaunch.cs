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
    LogRotationOptions LogRotation)
{
    /// <summary>
    /// Set for an HTTP handler (a container with a port named <c>http</c>): the run serves requests on
    /// that port, each in a fresh instance, until it is stopped, instead of running <c>_start</c> once.
    /// </summary>
    public Http.HttpHandlerLaunch? Http { get; init; }

    /// <summary>
    /// The pod asked for outbound network (<see cref="Stages.OutboundNetwork"/>, admitted by the node): a
    /// component's WASI gets it (<see cref="Wasmtime.Native.ComponentWasi"/>); a core module has no sockets.
    /// </summary>
    public bool OutboundNetwork { get; init; }

    /// <summary>
    /// Why the run's log could not be created (a full or read-only data directory, a path that is not a
    /// directory): the run does not start and ends as a StartError with this message, as a CRI runtime's
    /// failed container creation does.
    /// </summary>
    public string? LogProblem { get; init; }
}

/// <summary>
/// Lets the agent stop a running container: a parked (sleeping) guest is ended at once, a running one at
/// the end of its time slice (about <see cref="Compile.WasmEngineOptions.EpochTick"/>), even in a loop
/// that never calls the host.
/// </summary>
public sealed class ContainerControl(TimeProvider time, DateTimeOffset? deadline = null, ContainerUsage? usage = null)
{
    private volatile KillCause? _cause;

    /// <summary>When the container must stop (activeDeadlineSeconds); null for none.</summary>
    public DateTimeOffset? Deadline { get; } = deadline;

    /// <summary>What this run has used so far (CPU, memory), for the kubelet API's stats.</summary>
    /// <summary>Shared by an HTTP handler's run and its requests' instances, so the handler's CPU is theirs.</summary>
    public ContainerUsage Usage { get; } = usage ?? new();

    /// <summary>Why the container was killed; null while it was not.</summary>
    public KillCause? Cause => _cause;

    private Action? _onStop;

    private readonly TaskCompletionSource _serving = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Completes once an HTTP handler run (<see cref="Http.HandlerPort"/>) has bound its listener and
    /// serves requests; never for other containers. Readiness waits for it.
    /// </summary>
    public Task Serving => _serving.Task;

    /// <summary>True once <see cref="Serving"/> has completed.</summary>
    public bool IsServing => _serving.Task.IsCompleted;

    /// <summary>Called by the HTTP handler run once its listener is bound.</summary>
    internal void MarkServing() => _serving.TrySetResult();

    /// <summary>Asks the container to stop now; the first cause given is kept.</summary>
    public void Kill(KillCause cause)
    {
        ArgumentNullException.ThrowIfNull(cause);
        if (Interlocked.CompareExchange(ref _cause, cause, null) is null)
        {
            Volatile.Read(ref _onStop)?.Invoke();
        }
    }

    /// <summary>
    /// Calls <paramref name="callback"/> when the container is killed (at once if it already was), so an
    /// executor can wake a parked guest; null unregisters. One callback at a time.
    /// </summary>
    internal void OnStop(Action? callback)
    {
        Volatile.Write(ref _onStop, callback);
        if (callback is not null && _cause is not null)
        {
            callback();
        }
    }

    /// <summary>True when the container must stop; says why.</summary>
    internal bool ShouldStop([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out KillCause? cause)
    {
        if (_cause is null && Deadline is { } deadline && time.GetUtcNow() >= deadline)
        {
            Kill(KillCause.DeadlineExceeded);
        }

        cause = _cause;
        return cause is not null;
    }
}
