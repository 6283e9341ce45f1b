namespace Krustlet.Stages.Run;

/// <summary>How a container's run ended.</summary>
public enum ExitKind
{
    /// <summary>The guest returned or called proc_exit.</summary>
    Exited,

    /// <summary>The guest trapped (unreachable, stack overflow, out of fuel, …).</summary>
    Trapped,

    /// <summary>The agent interrupted the guest: the pod was stopped or its deadline passed.</summary>
    Killed,

    /// <summary>The container could not be started (an import missing, no entry point).</summary>
    FailedToStart,

    /// <summary>The guest declares a memory or table larger than its memory limit: refused before it ran, reported as OOMKilled.</summary>
    OutOfMemory,
}

/// <summary>
/// A finished container run, in the terms of a Kubernetes terminated container state. Exit codes follow
/// what a Linux container would show: a trap is 134 (as the Wasmtime CLI reports an abort), a kill 137.
/// </summary>
public sealed record ContainerExit(
    ExitKind Kind,
    int ExitCode,
    string Reason,
    string? Message,
    DateTimeOffset StartedAt,
    DateTimeOffset FinishedAt)
{
    public const int TrapExitCode = 134;
    public const int KilledExitCode = 137;

    /// <summary>A zero exit; restartPolicy OnFailure does not restart it.</summary>
    public bool Succeeded => ExitCode == 0 && Kind == ExitKind.Exited;
}
