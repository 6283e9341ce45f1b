using System.Globalization;

namespace Krustlet.Host.KubeletApi;

/// <summary>
/// The node's figures for the stats endpoints, from procfs: the agent process's CPU time
/// (<c>/proc/self/stat</c> utime + stime) and resident memory (<c>VmRSS</c> in <c>/proc/self/status</c>),
/// which hold every guest the agent runs, and the machine's available memory (<c>MemAvailable</c> in
/// <c>/proc/meminfo</c>). A figure that cannot be read is null.
/// </summary>
/// <param name="CpuNanoseconds">The agent's user and system CPU time.</param>
/// <param name="RssBytes">The agent's resident set.</param>
/// <param name="AvailableBytes">The machine's available memory.</param>
internal sealed record NodeUsage(long? CpuNanoseconds, long? RssBytes, long? AvailableBytes)
{
    /// <summary>Linux reports utime and stime in USER_HZ, which is 100 on every architecture.</summary>
    private const long NanosecondsPerClockTick = 10_000_000;

    public static NodeUsage Read(string procRoot = "/proc") =>
        new(ProcessCpu(Path.Combine(procRoot, "self", "stat")), Kibibytes(Path.Combine(procRoot, "self", "status"), "VmRSS:"), Kibibytes(Path.Combine(procRoot, "meminfo"), "MemAvailable:"));

    /// <summary>utime and stime: fields 14 and 15, counted after the command name in parentheses (which may hold spaces).</summary>
    internal static long? ProcessCpu(string statPath)
    {
        var stat = ReadOrNull(statPath);
        var close = stat?.LastIndexOf(')') ?? -1;
        if (close < 0)
        {
            return null;
        }

        var fields = stat![(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length > 12
            && long.TryParse(fields[11], NumberStyles.None, CultureInfo.InvariantCulture, out var user)
            && long.TryParse(fields[12], NumberStyles.None, CultureInfo.InvariantCulture, out var system)
            ? (user + system) * NanosecondsPerClockTick
            : null;
    }

    /// <summary>A "Name:   1234 kB" line of a procfs file, in bytes.</summary>
    internal static long? Kibibytes(string path, string name)
    {
        foreach (var line in (ReadOrNull(path) ?? string.Empty).Split('\n'))
        {
            if (line.StartsWith(name, StringComparison.Ordinal))
            {
                var value = line[name.Length..].Trim().Split(' ')[0];
                return long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var kib) ? kib * 1024 : null;
            }
        }

        return null;
    }

    private static string? ReadOrNull(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
