namespace Krustlet.Stages.Run.Executor;

/// <summary>
/// Where a <see cref="ModuleGuest"/>'s output goes, drained after every poll on the scheduler thread that
/// polled it. A container's run writes both streams to its CRI log (<see cref="CriLogOutput"/>); an HTTP
/// request's guest writes stdout into the response and may hold the guest while the client catches up.
/// </summary>
internal interface IGuestOutput
{
    /// <summary>Bytes the guest wrote to stdout since the last drain; <paramref name="final"/> once it has ended.</summary>
    void Stdout(ReadOnlySpan<byte> bytes, bool final);

    /// <summary>Bytes the guest wrote to stderr since the last drain.</summary>
    void Stderr(ReadOnlySpan<byte> bytes);

    /// <summary>
    /// After the drain of a guest that goes on: a task the guest waits for before it runs again (what it
    /// wrote is still being passed on), or null. The guest holds no thread meanwhile.
    /// </summary>
    Task? Backpressure { get; }
}

/// <summary>Both streams into the container's CRI log, as a container's run has them.</summary>
internal sealed class CriLogOutput(CriLogWriter log) : IGuestOutput
{
    public void Stdout(ReadOnlySpan<byte> bytes, bool final) => log.Write(LogStream.Stdout, bytes);

    public void Stderr(ReadOnlySpan<byte> bytes) => log.Write(LogStream.Stderr, bytes);

    public Task? Backpressure => null;
}
