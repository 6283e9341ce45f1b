namespace Krustlet.Stages.Run;

/// <summary>CrashLoopBackOff timing, as the kubelet's: 10 s doubling to 300 s, reset after 10 minutes of clean running.</summary>
public sealed record RestartBackoffOptions
{
    public TimeSpan Initial { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan Max { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>A run at least this long resets the delay to <see cref="Initial"/>.</summary>
    public TimeSpan ResetAfter { get; init; } = TimeSpan.FromMinutes(10);
}

/// <summary>The run stage's settings.</summary>
public sealed record RunOptions(string LogRoot)
{
    public LogRotationOptions LogRotation { get; init; } = LogRotationOptions.Default;

    public RestartBackoffOptions Backoff { get; init; } = new();

    /// <summary>Where pods' runtime state is saved so a restarted agent re-adopts them; none when null.</summary>
    public PodStateStore? State { get; init; }

    /// <summary>
    /// Every pod's IP as probes reach it when they name no host: the node's IP (wasm pods share the
    /// node's network, and HTTP handlers listen there), 127.0.0.1 in standalone mode and by default.
    /// </summary>
    public string PodIp { get; init; } = "127.0.0.1";
}

/// <summary>
/// Delays that double up to a cap: before a container's next restart, and before retrying a failed API
/// call (with <see cref="TimeSpan.Zero"/> as the last run, so only <see cref="Reset"/> starts over).
/// </summary>
public sealed class RestartBackoff(RestartBackoffOptions options)
{
    private TimeSpan? _current;

    /// <summary>Starts over at <see cref="RestartBackoffOptions.Initial"/> (the call succeeded).</summary>
    public void Reset() => _current = null;

    /// <summary>The delay before the next restart, given how long the run that just ended lasted.</summary>
    public TimeSpan Next(TimeSpan lastRun)
    {
        _current = _current is not { } current || lastRun >= options.ResetAfter
            ? options.Initial
            : TimeSpan.FromTicks(Math.Min(current.Ticks * 2, options.Max.Ticks));
        return _current.Value;
    }
}
