using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Krustlet.Stages.Run;

/// <summary>
/// What one run of a container has used, as its executor measures it, for the kubelet API's stats: the
/// CPU time spent running the guest and the bytes of its linear memory. Written by the thread running the
/// guest without a lock (Interlocked and Volatile), read by any thread at a scrape.
/// </summary>
public sealed partial class ContainerUsage
{
    private long _cpuNanoseconds;
    private long _memoryBytes;

    /// <summary>CPU time the executor spent running this guest, in nanoseconds.</summary>
    public long CpuNanoseconds => Volatile.Read(ref _cpuNanoseconds);

    /// <summary>The guest's linear memory in bytes, as last seen (0 before the executor first saw it).</summary>
    public long MemoryBytes => Volatile.Read(ref _memoryBytes);

    /// <summary>Adds the time between two <see cref="Stopwatch.GetTimestamp"/> readings around one poll of the guest.</summary>
    internal void AddPoll(long startTimestamp, long endTimestamp)
    {
        var ticks = endTimestamp - startTimestamp;
        if (ticks > 0)
        {
            Interlocked.Add(ref _cpuNanoseconds, Stopwatch.Frequency == 1_000_000_000 ? ticks : (long)(ticks * (1e9 / Stopwatch.Frequency)));
        }
    }

    /// <summary>Sets the CPU time outright (a component's thread CPU time since its run began).</summary>
    internal void SetCpu(long nanoseconds) => Volatile.Write(ref _cpuNanoseconds, nanoseconds);

    internal void SetMemory(long bytes) => Volatile.Write(ref _memoryBytes, bytes);

    /// <summary>
    /// The calling thread's CPU time in nanoseconds (<c>clock_gettime(CLOCK_THREAD_CPUTIME_ID)</c>): user
    /// and system time the kernel charged to this thread; 0 where the clock cannot be read.
    /// </summary>
    internal static long ThreadCpuNanoseconds()
    {
        if (!OperatingSystem.IsLinux() || ClockGetTime(ClockThreadCpuTimeId, out var now) != 0)
        {
            return 0;
        }

        return (now.Seconds * 1_000_000_000) + now.Nanoseconds;
    }

    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);
}
